"""End-to-end timing of a grid search: submit -> sensor -> grid_search run -> ranked results.

Default workload: 1,000 SMA-cross combinations (fast 5..100 step 5 x slow 110..600 step 10, all valid)
x 100 symbols x 5 years of daily klines (2020-01-02 .. 2024-12-31, about 1,200 trading days), i.e.
100,000 backtests with A-share rules (T+1, price limits, lots of 100, fees).

Setup, which is not timed: a fresh QP_HOME (a temporary directory unless --home is given) with
synthetic daily klines written straight into the cold tier with `ColdStore.replace_partitions`,
one `SyntheticMarket.fetch_daily_bars` call per trading day. No intraday quotes are materialized.

Timed, as in the local deployment: `grid.submit` (warm tier), one tick of the request sensor (claim
+ run request), then the `grid_search` job executed in process with the run request's config and
tags, on a persistent Dagster instance (SQLite under DAGSTER_HOME, like `make`). Pass
`--instance ephemeral` to keep Dagster's own bookkeeping in memory. The run is split into:

* load: the `grid_load_klines` step (request, klines from the cold tier, batch plan);
* evaluate: from the first batch step's start to the last one's end (all batches, wall time);
* write: the `grid_write_results` step (rank, cold-tier write, new parameter version, heatmap);
* overhead: the rest of the run (run start, IO manager, run end).

    python benchmarks/grid_e2e.py [--symbols 100] [--years 5] [--home DIR] [--executor in_process]
                                  [--walk-forward N]   # + N anchored folds, evaluated in the write step
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path


def build_klines(n_symbols: int, start: dt.date, end: dt.date) -> tuple[int, int, float]:
    """Synthetic daily klines for `n_symbols` over [start, end] in the cold tier of QP_HOME."""
    import pandas as pd

    from quant_platform.core.calendar import get_calendar
    from quant_platform.core.schema import KLINES_DAILY
    from quant_platform.settings import StoreSettings
    from quant_platform.sources.synthetic import SyntheticMarket
    from quant_platform.storage.cold import ColdStore

    t0 = time.perf_counter()
    days = get_calendar("XSHG").sessions(start, end)
    with ColdStore(StoreSettings.from_env().clickhouse_dsn) as cold:
        cold.ensure_schema()
        counts = cold.count_by_day("klines_daily", days)
        symbols = cold.query_df(f"SELECT uniqExact(symbol) AS n FROM {cold.table('klines_daily')}")["n"].iloc[
            0
        ]
        if all(counts.values()) and int(symbols) == n_symbols:  # a --home prepared by an earlier run
            return len(days), sum(counts.values()), time.perf_counter() - t0
        market = SyntheticMarket(n_symbols=n_symbols, snapshot_seconds=300)
        klines = pd.concat([market.fetch_daily_bars(d) for d in days], ignore_index=True)
        cold.replace_partitions(KLINES_DAILY, klines, days)
    return len(days), len(klines), time.perf_counter() - t0


def benchmark_job():
    """The grid_search job with the local resources and the multiprocess executor (loaded by every
    step's subprocess, hence a module-level function)."""
    import dagster as dg

    from quant_platform.grid.dagster import build_grid_job, grid_search_results
    from quant_platform.resources import build_resources

    defs = dg.Definitions(
        assets=[grid_search_results],
        jobs=[build_grid_job(executor_def=dg.multiprocess_executor)],
        resources=build_resources("local"),
    )
    return defs.resolve_job_def("grid_search")


def step_times(instance, run_id: str) -> dict[str, tuple[float, float]]:
    """{step key: (start, end)} epoch seconds from the run's event log."""
    out: dict[str, list[float]] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            out.setdefault(event.step_key, [entry.timestamp, entry.timestamp])[0] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            out.setdefault(event.step_key, [entry.timestamp, entry.timestamp])[1] = entry.timestamp
    return {k: (v[0], v[1]) for k, v in out.items()}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--home", type=Path, default=None, help="QP_HOME to use (default: a temp dir)")
    parser.add_argument("--executor", choices=["in_process", "multiprocess"], default="in_process")
    parser.add_argument("--instance", choices=["persistent", "ephemeral"], default="persistent")
    parser.add_argument("--batch-size", type=int, default=None, help="combinations per batch")
    parser.add_argument("--walk-forward", type=int, default=None, help="N walk-forward folds (write step)")
    args = parser.parse_args()

    home = args.home or Path(tempfile.mkdtemp(prefix="qp-grid-e2e-"))
    os.environ["QP_HOME"] = str(home)
    os.environ["QP_DEPLOYMENT"] = "local"
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    for var in ("QP_CLICKHOUSE_DSN", "QP_WAREHOUSE_URL", "QP_REDIS_URL"):
        os.environ.pop(var, None)
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    (home / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")

    start, end = dt.date(2020, 1, 2), dt.date(2020 + args.years - 1, 12, 31)
    print(f"setup: {args.symbols} symbols, {start} .. {end} ...", flush=True)
    n_days, n_rows, t_setup = build_klines(args.symbols, start, end)
    print(f"setup: {n_days} trading days, {n_rows:,} klines written in {t_setup:.1f}s (not timed)")

    import dagster as dg

    from quant_platform import grid
    from quant_platform.definitions import ASSETS
    from quant_platform.grid.dagster import GRID_ASSETS, GRID_JOBS
    from quant_platform.grid.dagster.sensors import evaluate_grid_requests
    from quant_platform.resources import build_resources
    from quant_platform.storage.warm import WarmStore

    defs = dg.Definitions(assets=[*ASSETS, *GRID_ASSETS], jobs=GRID_JOBS, resources=build_resources("local"),
                          executor=dg.in_process_executor)  # fmt: skip
    job = defs.resolve_job_def("grid_search")
    if args.executor == "multiprocess" and args.instance == "ephemeral":
        parser.error("the multiprocess executor needs the persistent instance")
    instance = dg.DagsterInstance.get() if args.instance == "persistent" else dg.DagsterInstance.ephemeral()
    store = WarmStore.from_env()
    store.migrate()

    t0 = time.perf_counter()
    request = grid.submit(
        "sma_cross",
        {"fast": "5:100:5", "slow": "110:600:10"},
        universe="all",
        start=start.isoformat(),
        end=end.isoformat(),
        batch_size=args.batch_size,
        walk_forward=args.walk_forward,
        idempotency_key=f"benchmark-{uuid.uuid4().hex}",  # a new search each time, even on a reused --home
        store=store,
    )
    t_submit = time.perf_counter()
    with dg.build_sensor_context(instance=instance) as context:
        (run_request,) = evaluate_grid_requests(context, store).run_requests
    t_sensor = time.perf_counter()
    wall0 = time.time()
    run_config = {**run_request.run_config, "loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    if args.executor == "in_process":
        result = job.execute_in_process(
            run_config=run_config, tags=run_request.tags, instance=instance, raise_on_error=False
        )
    else:
        from dagster._core.definitions.reconstruct import ReconstructableJob

        recon = ReconstructableJob.for_file(str(Path(__file__).resolve()), "benchmark_job")
        result = dg.execute_job(
            recon, instance, run_config=run_config, tags=run_request.tags, raise_on_error=False
        )
    t_run = time.perf_counter()
    done = store.get_grid_request(request.id)
    if not result.success or done.status != "succeeded":
        print(f"FAILED: request {done.status}: {done.error}", file=sys.stderr)
        return 1

    steps = step_times(instance, result.run_id)
    load = next(v for k, v in steps.items() if k.endswith("grid_load_klines"))
    write = next(v for k, v in steps.items() if k.endswith("grid_write_results"))
    batches = [v for k, v in steps.items() if "grid_evaluate_batch[" in k]
    evaluate = (min(b[0] for b in batches), max(b[1] for b in batches))
    run_wall = t_run - t_sensor
    t_load, t_eval, t_write = load[1] - load[0], evaluate[1] - evaluate[0], write[1] - write[0]
    parts = {
        "submit (warm tier)": t_submit - t0,
        "sensor tick (claim + run request)": t_sensor - t_submit,
        "run: load klines + plan": t_load,
        f"run: evaluate {len(batches)} batches": t_eval,
        "run: write results + activate winner": t_write,
        "run: Dagster overhead": run_wall - t_load - t_eval - t_write,
    }
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    combos = meta["combinations"].value["evaluated"]
    symbols = meta["symbols"].value
    total = t_run - t0
    print(
        f"\ngrid request {request.id}: {combos:,} combinations x {symbols} symbols x {n_days} days "
        f"= {combos * symbols:,} backtests; executor {args.executor}, instance {args.instance}"
    )
    for name, seconds in parts.items():
        print(f"  {name:<40} {seconds:7.2f} s")
    print(
        f"  {'total, submit -> results':<40} {total:7.2f} s   ({combos * symbols / total:,.0f} backtests/s)"
    )
    print(f"  best {meta['objective'].value}: {meta['best_objective'].value:.4f} with {done.best_params}")
    print(f"  rows written: {meta['dagster/row_count'].value:,}; wall started {time.ctime(wall0)}")
    if done.summary and done.summary.get("walk_forward"):
        oos = done.summary["walk_forward"]["oos"]
        print(f"  walk-forward: {args.walk_forward} folds, stitched out-of-sample sharpe {oos['sharpe']:.3f}")
    return 0 if total < 60 else 2


if __name__ == "__main__":
    sys.exit(main())
