"""The `console` logger of every job when `QP_LOG_FORMAT=json`: JSON lines on stderr (see `ops/logs.py`).

Dagster's own console logger prints coloured free text; `definitions.py` replaces it with this one
when the setting says json, so runs launched by the daemon, the UI or `quant-platform run` all log
`{time, level, logger, run_id, partition, message, step, event}`.
"""

from __future__ import annotations

import logging
import sys

import dagster as dg

from quant_platform.ops.logs import JSON, json_formatter
from quant_platform.settings import settings


@dg.logger(
    config_schema={
        "log_level": dg.Field(str, is_required=False, default_value="INFO"),
        "name": dg.Field(str, is_required=False, default_value="dagster"),
    },
    description="JSON lines on stderr: time, level, logger, run_id, partition, message (QP_LOG_FORMAT=json).",
)
def json_lines_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    config = init_context.logger_config
    logger = logging.Logger(config["name"], level=logging.getLevelName(config["log_level"].upper()))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter())
    logger.addHandler(handler)
    return logger


def run_loggers() -> dict[str, dg.LoggerDefinition]:
    """The loggers `Definitions` gives its jobs: ours in json mode, Dagster's default otherwise."""
    return {"console": json_lines_logger} if settings().log_format == JSON else {}
