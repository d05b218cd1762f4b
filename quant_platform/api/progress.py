"""Progress of an API-requested backtest run: the events the `backtest_request` job publishes on the
hot tier's `runs.{run_id}` channel, and the percentage the API shows (no Dagster import).

A run's last event is kept in the hot tier for an hour (`HotStore.last_run_event`), so `GET run`
reads it without subscribing. Only a hot tier shared between processes (Redis) carries events from a
Dagster run worker to the API: with the embedded in-process tier each process has its own copy and
the API falls back to the warm status (queued 0, running 50, ended 100).
"""

from __future__ import annotations

from typing import Any

from quant_platform.storage.hot import TERMINAL_EVENT_STATUSES, HotStore

STAGES: dict[str, float] = {
    "started": 5.0,  # the run worker picked the request up
    "data_loaded": 25.0,  # klines read; the record is running
    "simulated": 70.0,  # the strategy ran on every symbol
    "written": 90.0,  # equity and trades are in the cold tier
    "finished": 100.0,  # the record is succeeded
}
STATUS_PROGRESS = {"queued": 0.0, "running": 50.0}  # without an event; ended runs are 100


def event(stage: str, status: str = "running", **extra: Any) -> dict[str, Any]:
    """The event of a stage; `failed` and `cancelled` stages end the run at 100."""
    percent = STAGES.get(stage, 100.0)
    return {"status": status, "stage": stage, "progress": percent, **extra}


def publish(hot: HotStore, run_id: str, stage: str, status: str = "running", **extra: Any) -> None:
    hot.publish_run_event(run_id, event(stage, status, **extra))


def is_terminal(evt: dict[str, Any]) -> bool:
    return evt.get("status") in TERMINAL_EVENT_STATUSES


def shared(hot_url: str) -> bool:
    """Whether events published by a Dagster run worker reach this process (not `memory://`)."""
    return not hot_url.startswith("memory:")


def progress(status: str, last: dict[str, Any] | None) -> float:
    """0-100 for a run whose warm status is `status`: the last event while it runs, else the status."""
    if status == "running" and last is not None and not is_terminal(last):
        try:
            return max(0.0, min(100.0, float(last.get("progress", 50.0))))
        except (TypeError, ValueError):
            return 50.0
    return STATUS_PROGRESS.get(status, 100.0)
