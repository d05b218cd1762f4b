"""Latency of the hot and warm tiers: the numbers behind the storage sizing notes.

    python benchmarks/storage_hot_warm.py [--redis-url redis://127.0.0.1:6379/13]
        [--mysql-url mysql+pymysql://root@127.0.0.1:3306] [--symbols 5000] [--repeat 7]

Measures, on Redis and on the in-process store: a batch write/read of N latest quotes, a single
position read, a price update over 100 positions, the day roll, and the cost of a call while Redis
is down (ResilientHotStore, first failure and with the circuit open). On SQLite and MySQL: a run's
create -> start -> finish and a single run read. Unreachable services are skipped. The MySQL
benchmark uses its own database, `qp_bench_<random>`, and drops it afterwards.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from quant_platform.core.schema import RAW_QUOTES
from quant_platform.storage.hot import HotStore, MemoryHotStore, RedisHotStore, ResilientHotStore
from quant_platform.storage.warm import WarmStore

NOW = pd.Timestamp("2024-10-08 02:00", tz="UTC")


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median, p95) in milliseconds."""
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.95 * len(samples)))]


def report(label: str, stats: tuple[float, float]) -> None:
    print(f"  {label:<44} median {stats[0]:9.3f} ms   p95 {stats[1]:9.3f} ms")


def quotes(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    price = rng.uniform(2, 200, n)
    return RAW_QUOTES.conform(
        pd.DataFrame(
            {
                "symbol": [f"{600000 + i}.SH" for i in range(n)],
                "trade_date": pd.Timestamp(NOW.date()),
                "ts": NOW,
                "price": price,
                "open": price,
                "high": price,
                "low": price,
                "prev_close": price,
                "volume": rng.integers(0, 10**9, n),
                "amount": price * 1e6,
                "bid": price,
                "ask": price,
            }
        )
    )


def bench_hot(store: HotStore, n: int, repeat: int) -> None:
    df = quotes(n)
    syms = df["symbol"].tolist()
    report(f"set_latest_quotes({n})", timed(lambda: store.set_latest_quotes(df, now=NOW), repeat))
    report(f"get_latest_quotes({n})", timed(lambda: store.get_latest_quotes(syms), repeat))
    acc = f"bench-{uuid.uuid4().hex[:6]}"
    for s in syms[:100]:
        store.open_position(acc, s, 10.0)
    report("get_position (single)", timed(lambda: store.get_position(acc, syms[0]), repeat * 100))
    prices = {s: 10.5 for s in syms[:100]}
    report(
        "update_position_prices(100)", timed(lambda: store.update_position_prices(acc, prices), repeat * 10)
    )
    report("roll_day (100 positions)", timed(lambda: store.roll_day(acc), repeat * 10))


def bench_down(repeat: int) -> None:
    one = quotes(1)
    fresh = [ResilientHotStore(RedisHotStore("redis://127.0.0.1:1/0")) for _ in range(repeat)]
    report(
        "first call, Redis down (connection refused)",
        timed(lambda: fresh.pop().set_latest_quotes(one), repeat),
    )
    store = ResilientHotStore(RedisHotStore("redis://127.0.0.1:1/0"), cooldown=60, max_cooldown=60)
    store.set_latest_quotes(one)
    report("write with the circuit open (skipped)", timed(lambda: store.set_latest_quotes(one), repeat * 100))
    report("get_position with the circuit open", timed(lambda: store.get_position("a", "s"), repeat * 100))


def bench_warm(url: str, repeat: int) -> None:
    store = WarmStore(url)
    t0 = time.perf_counter()
    store.migrate()
    print(f"  {'migrate to head':<44} {(time.perf_counter() - t0) * 1000:9.1f} ms")
    name = f"bench-{uuid.uuid4().hex[:6]}"
    store.create_strategy(name)
    store.add_params(name, {"window": 20})

    def lifecycle() -> None:
        rid = store.create_run(name).id
        store.start_run(rid)
        store.finish_run(rid, stats={"sharpe": 1.0})

    report("run create -> start -> finish (3 tx)", timed(lifecycle, repeat * 5))
    rid = store.create_run(name).id
    report("get_run", timed(lambda: store.get_run(rid), repeat * 20))
    report(
        "submit_grid_request (new key)",
        timed(lambda: store.submit_grid_request({}, uuid.uuid4().hex), repeat * 5),
    )
    print(f"  {'ping':<44} {store.ping().latency_ms:9.3f} ms")
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    ap.add_argument("--mysql-url", default="mysql+pymysql://root@127.0.0.1:3306")
    ap.add_argument("--symbols", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    logging.getLogger("quant_platform").setLevel(logging.ERROR)  # the degraded bench warns on purpose

    print("hot tier, memory")
    bench_hot(MemoryHotStore(), args.symbols, args.repeat)

    redis_store = RedisHotStore(args.redis_url, prefix=f"qpbench:{uuid.uuid4().hex[:8]}:")
    try:
        redis_store.ping()
    except Exception as err:
        print(f"hot tier, redis: skipped ({err})")
    else:
        print(f"hot tier, redis ({redis_store.masked_url})")
        try:
            bench_hot(redis_store, args.symbols, args.repeat)
        finally:
            redis_store.delete_prefix()
            redis_store.close()

    print("hot tier, degraded")
    bench_down(args.repeat)

    with tempfile.TemporaryDirectory() as tmp:
        print("warm tier, sqlite")
        bench_warm(f"sqlite:///{Path(tmp) / 'bench.sqlite'}", args.repeat)

    server = sa.create_engine(args.mysql_url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 3})
    db = f"qp_bench_{uuid.uuid4().hex[:8]}"
    try:
        with server.begin() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS `{db}`")
    except sa.exc.OperationalError as err:
        print(f"warm tier, mysql: skipped ({err.orig})")
        return
    try:
        print("warm tier, mysql")
        bench_warm(
            sa.make_url(args.mysql_url).set(database=db).render_as_string(hide_password=False), args.repeat
        )
    finally:
        with server.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{db}`")


if __name__ == "__main__":
    main()
