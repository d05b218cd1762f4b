"""Operations' Dagster wiring, added to the one `Definitions` in `quant_platform.definitions`."""

from quant_platform.ops.dagster.loggers import json_lines_logger, run_loggers
from quant_platform.ops.dagster.sensors import (
    notify_blocked_checks,
    notify_collector_silence,
    notify_failed_runs,
    notify_grid_searches,
)

OPS_SENSORS = [notify_failed_runs, notify_blocked_checks, notify_grid_searches, notify_collector_silence]

__all__ = [
    "OPS_SENSORS",
    "json_lines_logger",
    "run_loggers",
    "notify_blocked_checks",
    "notify_collector_silence",
    "notify_failed_runs",
    "notify_grid_searches",
]
