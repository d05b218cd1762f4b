"""`benchmarks/api.py --scenario load`: many users submitting backtests at once, end to end.

Setup (not timed): a fresh temporary QP_HOME (embedded stores: chdb, SQLite, in-process hot tier)
with synthetic daily klines for `--symbols` symbols x `--years` years written straight into the cold
tier (`grid_e2e.build_klines`: `SyntheticMarket.fetch_daily_bars` + `ColdStore.replace_partitions`),
`--users` trader users with API keys, then two subprocesses: `quant-platform serve` and
`dagster-daemon run` on the project's workspace with a temporary DAGSTER_HOME holding a copy of the
project's `dagster.yaml`. One warm-up request is run to succeeded first (code server load, numba
cache), and reported apart.

Timed: every user defines a backtest of the whole universe and submits `--runs-per-user` single runs
of it, all users at once (asyncio + httpx). Queue wait is a record's `started_at - created_at`
(submit -> running: the request's own backtest started), total is `finished_at - created_at`, both
from the warm tier's clock. Meanwhile one client sends `GET /api/v1/backtests/{id}/runs/{run_id}`
at a fixed `--get-rate` (open loop: a slow answer does not slow the schedule down) until every run
ended. Subprocesses are stopped (their whole process group) on exit, on an error and on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOALS = {"wait_avg": 5.0, "wait_p95": 20.0}  # seconds, on a 2-core machine
PRODUCT = {"wait_avg": 30.0, "wait_p95": 120.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by the nearest-rank method; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(round(q * len(ordered) + 0.5)) - 1))]


class Processes:
    """Subprocesses in their own sessions, so stopping one stops its children (code server, runs)."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
        out = log.open("wb")
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs.append((name, proc))
        return proc

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for _, proc in reversed(self.procs):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # leftovers of the group (run workers)
        self.procs.clear()


def environment(home: Path, rate_limit: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QP_") and k != "DAGSTER_HOME"}
    env.update(
        QP_HOME=str(home),
        QP_DEPLOYMENT="local",
        DAGSTER_HOME=str(home / "dagster"),
        QP_API_RATE_LIMIT=rate_limit,
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    return env


def prepare(home: Path, n_symbols: int, years: int, users: int) -> tuple[list[str], list[str], str]:
    """Klines in the cold tier, the Dagster instance's config, users and keys: (symbols, keys, window)."""
    from grid_e2e import build_klines

    from quant_platform.sources.synthetic import synthetic_symbols
    from quant_platform.storage.warm import WarmStore

    start = dt.date(2020, 1, 2)
    end = dt.date(start.year + years - 1, 12, 31)
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster" / "dagster.yaml")
    days, rows, seconds = build_klines(n_symbols, start, end)
    print(f"setup: {rows:,} klines ({n_symbols} symbols x {days} trading days) written in {seconds:.1f} s")
    warm = WarmStore(f"sqlite:///{home / 'warehouse.sqlite'}")
    warm.migrate()
    keys = []
    for i in range(users):
        name = f"load{i:03d}"
        warm.create_user(name, "trader")
        keys.append(warm.create_api_key(name, "bench")[1])
    warm.close()
    return synthetic_symbols(n_symbols), keys, f"{start.isoformat()}/{end.isoformat()}"


def wait_until(check, timeout: float, what: str, procs: Processes) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in procs.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode} while waiting for {what}")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.5)
    raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")


def body(symbols: list[str], window: str) -> dict:
    start, end = window.split("/")
    return {
        "strategy": "sma_cross",
        "params": {"fast": 10, "slow": 30},
        "context": {"universe": symbols, "frequency": "1d", "window": {"start": start, "end": end}},
    }


async def submit_all(url: str, keys: list[str], definition: dict, runs_per_user: int) -> list[tuple]:
    """Every user at once: define a backtest, then submit its runs concurrently: [(bid, run_id, key)]."""
    import httpx

    async def user(client: httpx.AsyncClient, key: str, i: int) -> list[tuple]:
        auth = {"Authorization": f"Bearer {key}"}
        r = await client.post("/api/v1/backtests", json=definition, headers=auth)
        r.raise_for_status()
        bid = r.json()["backtest_id"]

        async def one(j: int) -> tuple:
            params = {"fast": 5 + (i * runs_per_user + j) % 20}
            r = await client.post(f"/api/v1/backtests/{bid}/runs", json={"params": params}, headers=auth)
            r.raise_for_status()
            return bid, r.json()["run_ids"][0], key

        return await asyncio.gather(*(one(j) for j in range(runs_per_user)))

    limits = httpx.Limits(max_connections=len(keys) * runs_per_user)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        per_user = await asyncio.gather(*(user(client, k, i) for i, k in enumerate(keys)))
    return [run for runs in per_user for run in runs]


async def poll_at_fixed_rate(url: str, targets: list[tuple], rate: float, done: asyncio.Event):
    """GET run (as its owner) at `rate` per second on a fixed schedule until `done`; (latencies s, errors)."""
    import httpx

    latencies: list[float] = []
    errors = 0
    tasks = []

    async def one(client: httpx.AsyncClient, bid: int, run_id: str, key: str) -> None:
        nonlocal errors
        t0 = time.perf_counter()
        try:
            auth = {"Authorization": f"Bearer {key}"}
            r = await client.get(f"/api/v1/backtests/{bid}/runs/{run_id}", headers=auth)
            ok = r.status_code == 200
        except httpx.HTTPError:
            ok = False
        latencies.append(time.perf_counter() - t0)
        errors += not ok

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        start, i = time.perf_counter(), 0
        while not done.is_set():
            bid, run_id, key = targets[i % len(targets)]
            tasks.append(asyncio.create_task(one(client, bid, run_id, key)))
            i += 1
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        await asyncio.gather(*tasks)
    return latencies, errors


def ended_runs(warm, run_ids: set[str]) -> list:
    """The records of `run_ids` that ended (succeeded, failed or cancelled)."""
    out = []
    for status in ("succeeded", "failed", "cancelled"):
        out += [r for r in warm.list_runs(status=status, limit=100_000) if r.id in run_ids]
    return out


async def load(url: str, home: Path, keys: list[str], definition: dict, args) -> dict:
    """Submit everything, poll GET run at a fixed rate until every run ended; the figures."""
    from quant_platform.storage.warm import WarmStore

    warm = WarmStore(f"sqlite:///{home / 'warehouse.sqlite'}")
    done = asyncio.Event()
    t0 = time.perf_counter()
    submitted = await submit_all(url, keys, definition, args.runs_per_user)
    submit_seconds = time.perf_counter() - t0
    ids = {run_id for _, run_id, _ in submitted}
    poller = asyncio.create_task(poll_at_fixed_rate(url, submitted, args.get_rate, done))
    deadline = time.monotonic() + args.timeout
    ended: list = []
    while time.monotonic() < deadline:
        ended = await asyncio.to_thread(ended_runs, warm, ids)
        if len(ended) == len(ids):
            break
        await asyncio.sleep(1.0)
    done.set()
    latencies, errors = await poller
    drain = time.perf_counter() - t0
    warm.close()
    waits = [(r.started_at - r.created_at).total_seconds() for r in ended if r.started_at]
    totals = [(r.finished_at - r.created_at).total_seconds() for r in ended if r.status == "succeeded"]
    return {
        "runs": len(ids),
        "ended": len(ended),
        "succeeded": len(totals),
        "submit_seconds": submit_seconds,
        "drain_seconds": drain,
        "waits": waits,
        "totals": totals,
        "get_latencies": latencies,
        "get_errors": errors,
    }


def report(figures: dict, args) -> None:
    waits, totals, gets = figures["waits"], figures["totals"], figures["get_latencies"]
    avg = sum(waits) / len(waits) if waits else float("nan")
    print(
        f"{figures['runs']} runs ({args.users} users x {args.runs_per_user}) submitted in "
        f"{figures['submit_seconds']:.1f} s; {figures['succeeded']} succeeded, {figures['ended']} ended, "
        f"all within {figures['drain_seconds']:.0f} s "
        f"({figures['runs'] / figures['drain_seconds']:.1f} runs/s)"
    )
    print(f"{'figure':34} {'ours':>9} {'goal':>9} {'product':>9}")
    rows = [
        ("queue wait avg (submit->running)", avg, GOALS["wait_avg"], PRODUCT["wait_avg"]),
        ("queue wait p95", pct(waits, 0.95), GOALS["wait_p95"], PRODUCT["wait_p95"]),
    ]
    for name, ours, goal, product in rows:
        verdict = "ok" if ours <= goal else "MISSED"
        print(f"{name:34} {ours:8.1f}s {goal:8.1f}s {product:8.1f}s  {verdict}")
    tot_avg = sum(totals) / len(totals) if totals else float("nan")
    print(f"{'submit->succeeded avg':34} {tot_avg:8.1f}s")
    print(f"{'submit->succeeded p95':34} {pct(totals, 0.95):8.1f}s")
    print(
        f"GET run at {args.get_rate:g}/s during the load: {len(gets)} requests, "
        f"p50 {pct(gets, 0.5) * 1000:.1f} ms, p99 {pct(gets, 0.99) * 1000:.1f} ms, "
        f"{figures['get_errors']} errors"
    )


def run(args) -> int:
    """The load scenario: setup, subprocesses, warm-up, load, figures; always stops the subprocesses."""
    import httpx

    home = Path(tempfile.mkdtemp(prefix="qp-api-load-"))
    procs = Processes()

    def interrupted(signum, frame):  # noqa: ARG001 - signal handler signature
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupted)
    try:
        os.environ.update(environment(home, "1000000/minute"))
        env = dict(os.environ)
        symbols, keys, window = prepare(home, args.symbols, args.years, args.users)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        bin_dir = Path(sys.executable).parent
        procs.start(
            "serve", [str(bin_dir / "quant-platform"), "serve", "--port", str(port)], env, home / "serve.log"
        )
        procs.start(
            "dagster-daemon",
            [str(bin_dir / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")],
            env,
            home / "daemon.log",
        )
        wait_until(lambda: httpx.get(f"{url}/healthz", timeout=2).status_code == 200, 120, "the API", procs)
        definition = body(symbols, window)
        t0 = time.perf_counter()
        warmup = asyncio.run(submit_all(url, keys[:1], definition, 1))
        bid, run_id, key = warmup[0]
        auth = {"Authorization": f"Bearer {key}"}

        def succeeded() -> bool:
            status = httpx.get(f"{url}/api/v1/backtests/{bid}/runs/{run_id}", headers=auth).json()["status"]
            if status in ("failed", "cancelled"):
                raise RuntimeError(f"the warm-up run {run_id} ended {status}: see {home}/daemon.log")
            return status == "succeeded"

        wait_until(succeeded, 600, "the warm-up run (daemon start, code server, first run)", procs)
        print(f"warm-up: first run after the daemon started succeeded in {time.perf_counter() - t0:.1f} s")
        report(asyncio.run(load(url, home, keys, definition, args)), args)
        return 0
    except KeyboardInterrupt:
        print("interrupted: stopping the subprocesses", file=sys.stderr)
        return 130
    finally:
        procs.stop()
        signal.signal(signal.SIGTERM, previous)
        if args.keep:
            print(f"kept {home} (serve.log, daemon.log, stores)")
        else:
            shutil.rmtree(home, ignore_errors=True)
