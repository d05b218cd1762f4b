"""Operations' Dagster wiring, added to the one `Definitions` in `quant_platform.definitions`."""

from quant_platform.ops.dagster.loggers import json_lines_logger, run_loggers
from quant_platform.ops.dagster.report import daily_report_job, daily_report_sensor
from quant_platform.ops.dagster.sensors import (
    notify_blocked_checks,
    notify_collector_silence,
    notify_failed_runs,
    notify_grid_searches,
)

OPS_SENSORS = [
    notify_failed_runs,
    notify_blocked_checks,
    notify_grid_searches,
    notify_collector_silence,
    daily_report_sensor,
]
OPS_JOBS = [daily_report_job]

__all__ = [
    "OPS_JOBS",
    "OPS_SENSORS",
    "daily_report_job",
    "daily_report_sensor",
    "json_lines_logger",
    "run_loggers",
    "notify_blocked_checks",
    "notify_collector_silence",
    "notify_failed_runs",
    "notify_grid_searches",
]
