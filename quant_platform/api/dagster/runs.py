"""How API-requested backtest runs become a Dagster run: job name, batch size, run config, tags and
run key, and back from a Dagster run to the requests it executes (no Dagster import).

One Dagster run executes a batch of requests: a run worker costs seconds to start on a small
machine, while a daily backtest of 100 symbols x 5 years costs well under one, so one run per
request would make the queue, not the backtests, the bottleneck under load (`benchmarks/api.py
--scenario load`). Each request still moves to running when its own backtest starts and ends on its
own: a failing request does not fail the others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from quant_platform.conventions import BACKTEST_REQUEST_TAG, EMBEDDED_TAG, STRATEGY_TAG, tag_value

JOB = "backtest_request"
OP = "run_backtest_request"
RUN_TAG = BACKTEST_REQUEST_TAG
BATCH_SIZE = 200  # requests per Dagster run: bounds a run's length (~0.1 s a daily 100-symbol request)


def run_config(run_ids: Sequence[str]) -> dict[str, Any]:
    return {"ops": {OP: {"config": {"run_ids": list(run_ids)}}}}


def run_ids_of(run_config: Mapping[str, Any] | None) -> list[str]:
    """The request run ids a `backtest_request` run executes, from its run config."""
    config = ((run_config or {}).get("ops", {}).get(OP) or {}).get("config") or {}
    return [str(r) for r in config.get("run_ids", [])]


def run_key(run_ids: Sequence[str]) -> str:
    """One request: its run id (launched at most once). A batch: a digest of its ids."""
    if len(run_ids) == 1:
        return run_ids[0]
    return "batch-" + hashlib.sha256(" ".join(sorted(run_ids)).encode()).hexdigest()[:24]


def run_tags(run_ids: Sequence[str], strategies: Sequence[str]) -> dict[str, str]:
    first = run_ids[0]
    label = first if len(run_ids) == 1 else f"{first} +{len(run_ids) - 1}"
    tags = {RUN_TAG: label, EMBEDDED_TAG: "true"}
    if len(set(strategies)) == 1:
        tags[STRATEGY_TAG] = tag_value(strategies[0])
    return tags
