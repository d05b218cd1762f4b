"""How an API-requested backtest run becomes a Dagster run: job name, run config, tags (no Dagster import)."""

from __future__ import annotations

from typing import Any

from quant_platform.conventions import BACKTEST_REQUEST_TAG, EMBEDDED_TAG, STRATEGY_TAG, tag_value

JOB = "backtest_request"
OP = "run_backtest_request"
RUN_TAG = BACKTEST_REQUEST_TAG


def run_config(run_id: str) -> dict[str, Any]:
    return {"ops": {OP: {"config": {"run_id": run_id}}}}


def run_tags(run_id: str, strategy: str) -> dict[str, str]:
    return {RUN_TAG: run_id, EMBEDDED_TAG: "true", STRATEGY_TAG: tag_value(strategy)}
