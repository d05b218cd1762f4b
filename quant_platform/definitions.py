"""The one `Definitions` of quant-platform: assets, checks, jobs, schedules, sensors and resources.

Resources are chosen per deployment (`QP_DEPLOYMENT=local|prod`, see `quant_platform.settings`):
local runs every store embedded with the in-process executor; prod talks to servers.

Where things are: assets in `quant_platform/assets/` (one module per kind of data: market_data,
bars, klines, qa, backtests, grid_search), their blocking quality checks in `quant_platform/checks/`,
grid-search requests in `quant_platform/grid/` and `sensors/`, crash leftovers (runs and records
of dead processes) in `reconcile.py` and `sensors/reconcile.py`, the stores behind them in
`quant_platform/resources/` -> `quant_platform/storage/`; options (chains, snapshots, greeks) in
`quant_platform/options/` with their wiring in `options/dagster/`; the positions' day roll in
`trading/dagster/`.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from quant_platform import jobs, schedules
from quant_platform.api.dagster import API_JOBS, API_SENSORS
from quant_platform.assets import backtests, bars, klines, market_data, qa
from quant_platform.checks.asset_checks import QUALITY_CHECKS
from quant_platform.grid.dagster import GRID_ASSETS, GRID_JOBS, GRID_SENSORS
from quant_platform.ops.dagster import OPS_JOBS, OPS_SENSORS, run_loggers
from quant_platform.options.dagster import (
    OPTIONS_ASSETS,
    OPTIONS_CHECKS,
    OPTIONS_JOBS,
    OPTIONS_SCHEDULES,
    options_resources,
)
from quant_platform.resources import build_resources
from quant_platform.sensors.file_drop import file_drop_sensor
from quant_platform.sensors.reconcile import stale_runs_sensor
from quant_platform.settings import LOCAL, deployment
from quant_platform.trading.dagster import TRADING_JOBS, TRADING_SCHEDULES

# Declarative automation: backtest_runs follows new klines once their blocking checks pass.
AUTOMATION = dg.AutomationConditionSensorDefinition(
    "research_automation",
    target=dg.AssetSelection.groups("research"),
    default_status=dg.DefaultSensorStatus.RUNNING,
)

ASSETS = [
    market_data.raw_quotes,
    bars.intraday_bars_assets,
    klines.klines_daily,
    qa.qa_report,
    backtests.backtest_runs,
]


def build_definitions(
    resources: Mapping[str, object] | None = None, kind: str | None = None
) -> dg.Definitions:
    """Definitions for a deployment; `resources` overrides individual resources (CLI options, tests)."""
    kind = kind or deployment()
    return dg.Definitions(
        assets=[*ASSETS, *GRID_ASSETS, *OPTIONS_ASSETS],
        asset_checks=[*QUALITY_CHECKS, *OPTIONS_CHECKS],
        jobs=[*jobs.all_jobs(), *GRID_JOBS, *OPTIONS_JOBS, *API_JOBS, *OPS_JOBS, *TRADING_JOBS],
        schedules=[*schedules.all_schedules(), *OPTIONS_SCHEDULES, *TRADING_SCHEDULES],
        sensors=[AUTOMATION, file_drop_sensor, stale_runs_sensor, *GRID_SENSORS, *API_SENSORS, *OPS_SENSORS],
        resources={**build_resources(kind), **options_resources(), **(resources or {})},
        executor=dg.in_process_executor if kind == LOCAL else dg.multiprocess_executor,
        loggers=run_loggers(),  # QP_LOG_FORMAT=json: JSON lines instead of Dagster's coloured text
    )


defs = build_definitions()
