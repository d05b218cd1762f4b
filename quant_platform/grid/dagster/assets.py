"""`grid_search_results`: the graph-backed asset every grid run materializes.

Being an asset gives each grid run lineage from `klines_daily`, and puts the run's heatmap, ranked
combinations and activated winner in the UI. The graph is made of the ops in `grid.dagster.ops`.
"""

from __future__ import annotations

import dagster as dg

from quant_platform.assets.common import cold_table_metadata
from quant_platform.core.schema import GRID_RESULTS
from quant_platform.grid.dagster.ops import (
    fail_grid_request_hook,
    grid_evaluate_batch,
    grid_load_klines,
    grid_write_results,
)
from quant_platform.grid.runs import GRID_ASSET_NAME

GRID_ASSET = dg.AssetKey(GRID_ASSET_NAME)


@dg.graph_asset(
    name=GRID_ASSET_NAME,
    ins={"klines_daily": dg.AssetIn(dagster_type=dg.Nothing)},
    group_name="research",
    kinds={"clickhouse", "sqlite", "numba"},
    metadata=cold_table_metadata(GRID_RESULTS),
    description="The latest grid search: every combination of a grid request ranked by its objective "
    "(cold tier table grid_search_results), a heatmap of the objective, and the winner activated as "
    "the strategy's parameter version (warm tier). Runs are launched by grid_request_sensor.",
)
def grid_search_results(klines_daily):
    hooks = {fail_grid_request_hook}
    work, data, holdout_data, batches = grid_load_klines.with_hooks(hooks)(klines_daily)
    results = batches.map(lambda batch: grid_evaluate_batch.with_hooks(hooks)(work, data, batch))
    return grid_write_results.with_hooks(hooks)(work, data, holdout_data, results.collect())
