"""Storage-tier figures: cold-tier kline queries and bulk loads next to a row-store peer, hot-tier reads.

    python benchmarks/storage.py [--symbols 5000] [--years 5] [--queries 200] [--redis-url URL]

Cold tier: 5,000 symbols x 5 years of daily klines (6.25 M rows) are bulk-loaded into the embedded
ClickHouse (chdb) through `ColdStore.replace_partitions` and, as the peer, into SQLite with a
(symbol, trade_date) primary key; then random 60-trading-day windows of one symbol are read
through `quant_platform.client.Client.klines` and through pandas on SQLite. Hot tier: the latest
quotes of 5,000 symbols from Redis and from the in-process cache, and a single position read
(see benchmarks/storage_hot_warm.py for the full hot/warm matrix).

Targets: 60-day kline query < 20 ms, position read < 1 ms, cache hit < 10 ms.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from quant_platform.client import Client
from quant_platform.core.calendar import get_calendar
from quant_platform.core.schema import KLINES_DAILY
from quant_platform.sources.synthetic import synthetic_symbols
from quant_platform.storage.cold import ColdStore

sys.path.insert(0, str(Path(__file__).parent))
from storage_hot_warm import quotes as latest_quote_frame  # noqa: E402


def synthetic_klines(n_symbols: int, days: list) -> pd.DataFrame:
    """Daily klines for every (day, symbol): a vectorised random walk, ~1 s per million rows."""
    rng = np.random.default_rng(42)
    n_days = len(days)
    rets = rng.normal(0.0003, 0.02, (n_days, n_symbols))
    close = np.round(10 * np.exp(np.cumsum(rets, axis=0)), 2).clip(0.01)
    prev = np.vstack([close[:1], close[:-1]])
    open_ = np.round(prev * (1 + rng.normal(0, 0.004, close.shape)), 2).clip(0.01)
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, close.shape))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, close.shape))
    volume = rng.integers(100_000, 10_000_000, close.shape) // 100 * 100
    symbols = np.array(synthetic_symbols(n_symbols), dtype=object)
    return pd.DataFrame(
        {
            "symbol": np.tile(symbols, n_days),
            "trade_date": np.repeat(pd.DatetimeIndex(days).values.astype("datetime64[s]"), n_symbols),
            "open": open_.ravel(),
            "high": np.round(high, 2).ravel(),
            "low": np.round(low, 2).ravel(),
            "close": close.ravel(),
            "prev_close": prev.ravel(),
            "volume": volume.ravel(),
            "amount": np.round(volume * close, 2).ravel(),
            "change_rate": (close / prev - 1).ravel(),
            "limit_up": np.round(prev * 1.1, 2).ravel(),
            "limit_down": np.round(prev * 0.9, 2).ravel(),
        }
    )


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def bench_cold(n_symbols: int, years: int, queries: int, workdir: Path) -> list[tuple]:
    cal = get_calendar("XSHG")
    days = cal.sessions("2019-01-02", "2024-12-31")[-years * 250 :]
    t0 = time.perf_counter()
    klines = KLINES_DAILY.conform(synthetic_klines(n_symbols, days))
    print(f"generated {len(klines):,} kline rows in {time.perf_counter() - t0:.1f} s")
    rows = []

    dsn = f"chdb://{workdir / 'chdb'}"
    with ColdStore(dsn) as cold:
        cold.ensure_schema([KLINES_DAILY])
        t0 = time.perf_counter()
        cold.replace_partitions(KLINES_DAILY, klines, days)
        load_ch = time.perf_counter() - t0
        cold.optimize("klines_daily")  # steady state: a long-lived table has merged its parts
    db = sqlite3.connect(workdir / "peer.sqlite")
    db.execute(
        "CREATE TABLE klines_daily (symbol TEXT, trade_date TEXT, open REAL, high REAL, low REAL, "
        "close REAL, prev_close REAL, volume INTEGER, amount REAL, change_rate REAL, limit_up REAL, "
        "limit_down REAL, PRIMARY KEY (symbol, trade_date)) WITHOUT ROWID"
    )
    peer = klines.assign(trade_date=klines["trade_date"].dt.strftime("%Y-%m-%d"))
    t0 = time.perf_counter()
    db.executemany(
        "INSERT INTO klines_daily VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", peer.itertuples(index=False, name=None)
    )
    db.commit()
    load_sq = time.perf_counter() - t0
    rows.append(("bulk load, rows/s", f"{len(klines) / load_ch:,.0f}", f"{len(klines) / load_sq:,.0f}"))

    rng = np.random.default_rng(7)
    symbols = synthetic_symbols(n_symbols)
    windows = [
        (symbols[rng.integers(n_symbols)], int(rng.integers(0, len(days) - 60))) for _ in range(queries)
    ]
    ch, sq = [], []
    with Client(clickhouse_dsn=dsn) as qp:
        qp.klines([symbols[0]], days[0], days[59])  # connect and warm up once
        for sym, i in windows:
            t0 = time.perf_counter()
            df = qp.klines([sym], days[i], days[i + 59])
            ch.append((time.perf_counter() - t0) * 1000)
            assert len(df) == 60, len(df)
    for sym, i in windows:
        t0 = time.perf_counter()
        df = pd.read_sql_query(
            "SELECT * FROM klines_daily WHERE symbol = ? AND trade_date BETWEEN ? AND ? ORDER BY trade_date",
            db,
            params=(sym, days[i].isoformat(), days[i + 59].isoformat()),
        )
        sq.append((time.perf_counter() - t0) * 1000)
        assert len(df) == 60
    (c50, c99), (s50, s99) = percentiles(ch), percentiles(sq)
    rows.append(("60-day klines, one symbol: p50 ms", f"{c50:.2f}", f"{s50:.2f}"))
    rows.append(("60-day klines, one symbol: p99 ms", f"{c99:.2f}", f"{s99:.2f}"))
    db.close()
    return rows


def bench_hot(redis_url: str, n: int) -> list[tuple]:
    from quant_platform.storage.hot import MemoryHotStore, RedisHotStore

    rows = []
    frame = latest_quote_frame(n)
    symbols = list(frame["symbol"])
    stores = {"memory": MemoryHotStore()}
    try:
        redis_store = RedisHotStore(redis_url, prefix="qpbench:")
        redis_store.ping()
        stores["redis"] = redis_store
    except Exception as exc:  # noqa: BLE001 - the benchmark reports what it could not reach
        print(f"redis unavailable ({exc}); hot-tier Redis figures skipped")
    figures: dict[str, dict[str, str]] = {}
    for name, store in stores.items():
        store.set_latest_quotes(frame)
        store.open_position("bench", symbols[0], 10.0)
        reads, pos = [], []
        for _ in range(20):
            t0 = time.perf_counter()
            got = store.get_latest_quotes(symbols)
            reads.append((time.perf_counter() - t0) * 1000)
            assert len(got) == n
        for _ in range(200):
            t0 = time.perf_counter()
            store.get_position("bench", symbols[0])
            pos.append((time.perf_counter() - t0) * 1000)
        figures[name] = {
            "quotes": f"{statistics.median(reads):.2f}",
            "position": f"{statistics.median(pos):.3f}",
        }
        if name == "redis":
            store.delete_prefix()
        store.close()
    rows.append(
        (
            f"latest quotes, {n:,} symbols: p50 ms",
            figures.get("memory", {}).get("quotes", "-"),
            figures.get("redis", {}).get("quotes", "-"),
        )
    )
    rows.append(
        (
            "single position read: p50 ms",
            figures.get("memory", {}).get("position", "-"),
            figures.get("redis", {}).get("position", "-"),
        )
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--symbols", type=int, default=5000)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cold = bench_cold(args.symbols, args.years, args.queries, Path(tmp))
    hot = bench_hot(args.redis_url, args.symbols)
    width = max(len(r[0]) for r in cold + hot)
    print(f"\n{'cold tier':<{width}}  {'ClickHouse (chdb)':>18}  {'SQLite (peer)':>14}")
    for label, a, b in cold:
        print(f"{label:<{width}}  {a:>18}  {b:>14}")
    print(f"\n{'hot tier':<{width}}  {'in-process cache':>18}  {'Redis':>14}")
    for label, a, b in hot:
        print(f"{label:<{width}}  {a:>18}  {b:>14}")


if __name__ == "__main__":
    main()
