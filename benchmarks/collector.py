"""Streaming collector throughput and hot-tier update latency against a local feed.

The fake feed runs in a separate process on 127.0.0.1 (so it does not share the collector's GIL);
the collector writes the hot tier (in-memory store) and the cold tier (embedded ClickHouse in a
temp directory) as in production. Each scenario runs for a bounded time and prints one table row.

    python benchmarks/collector.py                 # 100 and 1,000 pairs, 5 s each
    python benchmarks/collector.py --seconds 10 --pairs 100 1000 --rate 20000

Latency columns: `recv->hot` is from receiving a message to its pair's quote and change rates being
visible in the hot tier (the collector's own latency, the `qp_collector_update_latency_seconds`
histogram); `event->hot` also includes the feed's send queue (event time stamped by the feed).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _serve(pairs: int, rate: float, batch: int, port_pipe) -> None:
    from quant_platform.collector.testing import FakeExchange

    async def main() -> None:
        ex = await FakeExchange([f"B{i:04d}-USDT" for i in range(pairs)], rate=rate, batch=batch).start()
        port_pipe.send(ex.port)
        await asyncio.Event().wait()

    asyncio.run(main())


async def _collect(port: int, pairs: int, seconds: float, dsn: str) -> dict:
    from quant_platform.collector import ColdSink, Collector, CollectorConfig
    from quant_platform.storage.hot import MemoryHotStore, TTLPolicy

    names = [f"B{i:04d}-USDT" for i in range(pairs)]
    collector = Collector(
        CollectorConfig(url=f"ws://127.0.0.1:{port}", pairs=names, metrics_port=None, flush_interval=1.0),
        sink=ColdSink(dsn),
        hot=MemoryHotStore(ttl=TTLPolicy("24/7")),
        resume=False,
    )
    task = asyncio.create_task(collector.run())
    await asyncio.sleep(1.0)  # warm-up: connect, subscribe, first flush
    collector.latencies.clear()
    collector.feed_latencies.clear()
    start_n, start_t = collector.stats.accepted, time.perf_counter()
    await asyncio.sleep(seconds)
    n, elapsed = collector.stats.accepted - start_n, time.perf_counter() - start_t
    lat, feed = np.array(collector.latencies), np.array(collector.feed_latencies)
    collector.stop()
    await task
    return {
        "msgs_per_s": n / elapsed,
        "recv_p50": np.percentile(lat, 50) * 1000,
        "recv_p99": np.percentile(lat, 99) * 1000,
        "event_p50": np.percentile(feed, 50) * 1000,
        "event_p99": np.percentile(feed, 99) * 1000,
        "written": collector.stats.rows_written,
        "accepted": collector.stats.accepted,
    }


def run(pairs: int, seconds: float, rate: float, batch: int) -> dict:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(pairs, rate, batch, child), daemon=True)
    server.start()
    try:
        port = parent.recv()
        with tempfile.TemporaryDirectory() as tmp:
            return asyncio.run(_collect(port, pairs, seconds, f"chdb://{tmp}/chdb"))
    finally:
        server.terminate()
        server.join(5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rate", type=float, default=20_000.0, help="offered ticks/s (all pairs together)")
    ap.add_argument("--batch", type=int, default=20, help="ticks per WebSocket frame")
    args = ap.parse_args()
    rows = [(p, run(p, args.seconds, args.rate, args.batch)) for p in args.pairs]
    print(
        f"\noffered {args.rate:,.0f} ticks/s, {args.batch} ticks per frame, {args.seconds:g} s per scenario"
    )
    head = (
        f"{'pairs':>6} {'msgs/s':>10} {'recv->hot p50':>14} {'p99':>8} "
        f"{'event->hot p50':>15} {'p99':>8} {'written':>9}"
    )
    print(head)
    print("-" * len(head))
    for p, r in rows:
        print(
            f"{p:>6} {r['msgs_per_s']:>10,.0f} {r['recv_p50']:>12.1f}ms {r['recv_p99']:>6.1f}ms "
            f"{r['event_p50']:>13.1f}ms {r['event_p99']:>6.1f}ms {r['written']:>9,}"
        )


if __name__ == "__main__":
    main()
