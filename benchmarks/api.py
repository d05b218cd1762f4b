"""HTTP API latency: quant-platform's routes next to a bare FastAPI route on the same uvicorn.

The app (`create_app`) is served by uvicorn on 127.0.0.1 in a thread, over embedded stores in a
temporary QP_HOME (SQLite warm tier, in-memory rate limits); one keep-alive httpx client sends
`--requests` requests per route, sequentially, after a warm-up, and the script prints the median and
p99 latency and the sequential request rate of each. The peer is a bare `GET /peer` route returning
`{}` on the same server, through the same middlewares: what FastAPI + uvicorn + the middlewares cost
before any of the API's work (authentication, a warm-tier read, a write with an idempotency claim).

    python benchmarks/api.py [--requests 300]

`--scenario load` (`benchmarks/api_load.py`): 50 users submit 4 single backtests each at once (daily,
100 symbols x 5 years) to `quant-platform serve` with `dagster-daemon run` executing them; prints
the queue wait (submit -> running) and submit -> succeeded, average and p95, next to the goals, and
`GET run` p50/p99 at a fixed request rate during the load.

    python benchmarks/api.py --scenario load [--users 50] [--runs-per-user 4] [--get-rate 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", choices=["latency", "load"], default="latency")
    ap.add_argument("--requests", type=int, default=300, help="latency: timed requests per route")
    ap.add_argument("--users", type=int, default=50, help="load: users submitting at once")
    ap.add_argument("--runs-per-user", type=int, default=4, help="load: single runs each user submits")
    ap.add_argument("--symbols", type=int, default=100, help="load: symbols of every backtest")
    ap.add_argument("--years", type=int, default=5, help="load: years of daily klines (from 2020)")
    ap.add_argument("--get-rate", type=float, default=20.0, help="load: GET run requests per second")
    ap.add_argument("--timeout", type=float, default=1800.0, help="load: give up after this many seconds")
    ap.add_argument("--keep", action="store_true", help="load: keep the temporary QP_HOME and logs")
    args = ap.parse_args(argv)
    if args.scenario == "load":
        import api_load

        return api_load.run(args)

    home = Path(tempfile.mkdtemp(prefix="qp-api-bench-"))
    os.environ.update({"QP_HOME": str(home), "QP_DEPLOYMENT": "local", "QP_API_RATE_LIMIT": "1000000/minute"})
    import httpx
    import uvicorn

    from quant_platform.api.app import create_app
    from quant_platform.settings import settings

    current = settings()
    app = create_app(current)

    @app.get("/peer", include_in_schema=False)
    def peer() -> dict:
        return {}

    warm = app.state.qp.warm
    warm.create_user("bench", "trader")
    _, key = warm.create_api_key("bench")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    body = {
        "strategy": "sma_cross",
        "context": {"universe": ["600000.SH"], "window": {"start": "2024-03-01", "end": "2024-05-31"}},
    }
    routes = [
        ("GET /peer (bare FastAPI)", "GET", "/peer", None),
        ("GET /healthz", "GET", "/healthz", None),
        ("GET /api/v1/auth/me", "GET", "/api/v1/auth/me", None),
        ("GET /api/v1/backtests", "GET", "/api/v1/backtests", None),
        ("POST /api/v1/backtests (+ key)", "POST", "/api/v1/backtests", body),
    ]
    print(f"{args.requests} sequential requests per route, keep-alive, {sys.platform}")
    print(f"{'route':34} {'median ms':>10} {'p99 ms':>9} {'req/s':>8}")
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}) as c:
        for name, method, path, json in routes:
            for i in range(20):  # warm-up
                c.request(method, path, json=json, headers={"Idempotency-Key": f"w{i}"} if json else None)
            times = []
            for i in range(args.requests):
                headers = {"Idempotency-Key": f"{name}{i}"} if json else None
                t0 = time.perf_counter()
                r = c.request(method, path, json=json, headers=headers)
                times.append(time.perf_counter() - t0)
                assert r.status_code < 300, r.text
            times.sort()
            median, p99 = statistics.median(times), times[int(len(times) * 0.99) - 1]
            print(f"{name:34} {median * 1000:10.2f} {p99 * 1000:9.2f} {len(times) / sum(times):8.0f}")
    server.should_exit = True
    thread.join(timeout=10)
    return 0


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    sys.exit(main())
