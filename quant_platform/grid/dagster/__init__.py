"""Grid search's Dagster wiring, added to the one `Definitions` in `quant_platform.definitions`.

- `ops.py`: load klines once, evaluate batches (fan-out), write ranked results, fail-request hook;
- `assets.py`: the graph-backed `grid_search_results` asset;
- `jobs.py`: the `grid_search` job and its executor (`QP_GRID_EXECUTOR`);
- `sensors.py`: queued requests -> runs, new klines -> re-runs of watched searches.

The plain logic these call (specs, batching, progress, winner activation, run config and tags) is
in the Dagster-free modules of `quant_platform.grid`.
"""

from quant_platform.grid.dagster.assets import GRID_ASSET, grid_search_results
from quant_platform.grid.dagster.jobs import build_grid_job, grid_executor
from quant_platform.grid.dagster.sensors import grid_request_sensor, watched_grid_sensor

grid_search_job = build_grid_job(grid_executor())

GRID_ASSETS = [grid_search_results]
GRID_JOBS = [grid_search_job]
GRID_SENSORS = [grid_request_sensor, watched_grid_sensor]

__all__ = [
    "GRID_ASSET",
    "GRID_ASSETS",
    "GRID_JOBS",
    "GRID_SENSORS",
    "build_grid_job",
    "grid_executor",
    "grid_request_sensor",
    "grid_search_job",
    "grid_search_results",
    "watched_grid_sensor",
]
