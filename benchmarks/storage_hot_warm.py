"""Latency of the hot and warm tiers: the numbers behind the storage sizing notes.

    python benchmarks/storage_hot_warm.py [--redis-url redis://127.0.0.1:6379/13]
        [--mysql-url mysql+pymysql://root@127.0.0.1:3306] [--symbols 5000] [--repeat 7]
        [--trades 100000]

First the read path of the latest quotes (`Client.latest_quotes`, the call behind
`/api/v1/quotes/latest`): 5,000 symbols and one symbol, on the in-process store and on Redis, next
to the previous encoding (one JSON document per symbol, MGET, a DataFrame inferred from the parsed
records) and the goals (5,000 < 5 ms, one < 1 ms), with the load average, since a loaded 2-core
machine moves these figures a lot. Then, on Redis and on the in-process store: a batch write/read
of N latest quotes, a single position read, a price update over 100 positions, the day roll, and
the cost of a call while Redis is down (ResilientHotStore, first failure and with the circuit
open); `record_trades` of 1,000 fills over an account's history on chdb. On SQLite and MySQL: a
run's create -> start -> finish and a single run read. Unreachable services are skipped. The MySQL
benchmark uses its own database, `qp_bench_<random>`, and drops it afterwards. The read path goes
through the client, so it writes (and then deletes) quotes under the client's own keys
(`qp:q2:<symbol>`) in the --redis-url database: give it a scratch database, never a live one.
"""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import os
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


GOAL_MANY_MS, GOAL_ONE_MS = 5.0, 1.0


def json_docs(df: pd.DataFrame) -> dict[str, str]:
    """The previous hot-tier encoding: one JSON document per symbol, datetimes as epoch ms."""
    out = df.copy()
    for col in ("trade_date", "ts"):
        s = out[col].dt.tz_convert("UTC").dt.tz_localize(None) if col == "ts" else out[col]
        out[col] = np.asarray(s, dtype="datetime64[ms]").astype("int64")
    lines = out.to_json(orient="records", lines=True).splitlines()
    return dict(zip(df["symbol"].tolist(), lines, strict=True))


def json_decode(docs: list[str]) -> pd.DataFrame:
    """The previous decoder: parse every document, then cast each column to its schema dtype."""
    df = pd.DataFrame(json.loads("[" + ",".join(docs) + "]"))
    for col, dtype in RAW_QUOTES.dtypes.items():
        if dtype.startswith("datetime64"):
            df[col] = pd.to_datetime(df[col], unit="ms", utc="UTC" in dtype).astype(dtype)
        elif dtype == "int64":
            df[col] = pd.to_numeric(df[col]).astype("int64")
        elif dtype == "str":
            df[col] = df[col].astype(str)
        else:
            df[col] = pd.to_numeric(df[col]).astype(dtype)
    return df


def json_peer(kind: str, df: pd.DataFrame, redis_url: str) -> Callable[[list[str]], pd.DataFrame]:
    """A reader of the previous encoding, on a dict (memory) or under its own Redis prefix."""
    docs = json_docs(df)
    if kind == "memory":
        return lambda syms: json_decode([d for d in map(docs.get, syms) if d is not None])
    import redis

    client, prefix = redis.Redis.from_url(redis_url, decode_responses=True), f"qpjson:{uuid.uuid4().hex[:8]}:"
    client.mset({prefix + k: v for k, v in docs.items()})
    atexit.register(lambda: client.delete(*[prefix + k for k in docs]))
    return lambda syms: json_decode([d for d in client.mget([prefix + s for s in syms]) if d is not None])


def bench_read_path(kind: str, redis_url: str, n: int, repeat: int) -> None:
    """Client.latest_quotes of n symbols and of one, our encoding next to the JSON one."""
    from quant_platform.client import Client

    df = quotes(n)
    syms = df["symbol"].tolist()
    with tempfile.TemporaryDirectory() as tmp:
        url = "memory://" if kind == "memory" else redis_url
        qp = Client(clickhouse_dsn=f"chdb://{tmp}/chdb", redis_url=url)
        qp.hot.set_latest_quotes(df, now=NOW)  # the writers' path (collector, raw_quotes)
        try:
            assert len(qp.latest_quotes(syms)) == n  # every symbol from the hot tier: no cold read
            ours = timed(lambda: qp.latest_quotes(syms), repeat * 5)
            one = timed(lambda: qp.latest_quotes(syms[:1]), repeat * 100)
        finally:
            if kind == "redis":
                import redis

                redis.Redis.from_url(redis_url).delete(*[f"qp:q2:{s}" for s in syms])
            qp.close()
    peer = json_peer(kind, df, redis_url)
    old = timed(lambda: peer(syms), repeat * 5)
    old_one = timed(lambda: peer(syms[:1]), repeat * 100)
    for label, new, prev, goal in (
        (f"latest quotes of {n:,}", ours, old, GOAL_MANY_MS),
        ("latest quote of one", one, old_one, GOAL_ONE_MS),
    ):
        verdict = "met" if new[0] < goal else "NOT met"
        print(
            f"  {label:<22} ours p50 {new[0]:7.3f} / p95 {new[1]:7.3f} ms"
            f"   JSON per symbol p50 {prev[0]:7.3f} ms   goal < {goal:g} ms: {verdict}"
        )


def fills(account: str, n: int, first: int, day: pd.Timestamp) -> pd.DataFrame:
    """n fills over 200 symbols, buys twice as often as sells, so positions stay open."""
    rng = np.random.default_rng(first)
    i = np.arange(first, first + n)
    return pd.DataFrame(
        {
            "trade_id": [f"T{k:08d}" for k in i],
            "account": account,
            "strategy": "bench",
            "symbol": [f"{600000 + k % 200}.SH" for k in i],
            "side": np.where(i % 3 == 2, "sell", "buy"),
            "quantity": np.where(i % 3 == 2, 100.0, 200.0),
            "price": rng.uniform(5, 50, n).round(2),
            "ts": day + pd.to_timedelta(i % 14_400, unit="s"),
            "commission": 1.0,
            "realized_pnl": 0.0,
        }
    )


def bench_record_trades(history: int, repeat: int) -> None:
    """record_trades of a day's 1,000 fills over an account's history, next to the history scan
    (net quantities per symbol) that decided closes before the hot position kept the units held."""
    from quant_platform.client import Client

    with tempfile.TemporaryDirectory() as tmp:
        qp = Client(f"chdb://{tmp}/chdb", f"sqlite:///{tmp}/warm.sqlite", "memory://")
        try:
            qp.warm.create_account("bench", initial_cash=1e9)
            days = pd.bdate_range("2023-01-02", periods=max(1, history // 1000), tz="UTC")
            for k, day in enumerate(days):
                qp.record_trades(fills("bench", min(1000, history - 1000 * k), 1000 * k, day))
            day, first = days[-1] + pd.offsets.BDay(1), history
            samples, scans = [], []
            for _ in range(repeat):
                batch = fills("bench", 1000, first, day)
                t0 = time.perf_counter()
                qp.record_trades(batch)
                samples.append((time.perf_counter() - t0) * 1000)
                syms = sorted(batch["symbol"].unique())
                t0 = time.perf_counter()
                qp.cold.net_quantities(["bench"], syms)
                scans.append((time.perf_counter() - t0) * 1000)
                first, day = first + 1000, day + pd.offsets.BDay(1)
        finally:
            qp.close()
    print(
        f"  {'record_trades(1,000 fills), p50':<44} {statistics.median(samples):9.1f} ms"
        f"   + the history scan it no longer runs: {statistics.median(scans):7.1f} ms"
        f" ({history:,} trades, 200 symbols)"
    )


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
    ap.add_argument("--trades", type=int, default=100_000, help="trade history of the record_trades bench")
    args = ap.parse_args()
    logging.getLogger("quant_platform").setLevel(logging.ERROR)  # the degraded bench warns on purpose

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("read path, Client.latest_quotes, in-process cache")
    bench_read_path("memory", args.redis_url, args.symbols, args.repeat)
    print("hot tier, memory")
    bench_hot(MemoryHotStore(), args.symbols, args.repeat)

    redis_store = RedisHotStore(args.redis_url, prefix=f"qpbench:{uuid.uuid4().hex[:8]}:")
    try:
        redis_store.ping()
    except Exception as err:
        print(f"hot tier, redis: skipped ({err})")
    else:
        print(f"read path, Client.latest_quotes, redis ({redis_store.masked_url})")
        bench_read_path("redis", args.redis_url, args.symbols, args.repeat)
        print(f"hot tier, redis ({redis_store.masked_url})")
        try:
            bench_hot(redis_store, args.symbols, args.repeat)
        finally:
            redis_store.delete_prefix()
            redis_store.close()

    print("trading, record_trades on chdb with the in-process hot tier")
    bench_record_trades(args.trades, args.repeat)
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
