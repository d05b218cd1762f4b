"""How a grid request becomes a Dagster run, and how a watched search is re-run: names, config, tags.

Plain Python (no Dagster import): the sensors in `grid.dagster.sensors` and the tests both use it.
A run evaluates one request; the request id travels in the run config of the `grid_load_klines` op
and in the run tag `quant_platform/grid_request`, so the run can always be traced back to it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from quant_platform.conventions import EMBEDDED_TAG, GRID_REQUEST_TAG, GRID_TAG, STRATEGY_TAG, tag_value
from quant_platform.storage.warm import GridRequest, Status, WarmStore

GRID_JOB = "grid_search"
GRID_ASSET_NAME = "grid_search_results"
LOAD_OP = "grid_load_klines"
WATCH_KEY_PREFIX = "watch:"


def run_config(request_id: str) -> dict[str, Any]:
    """Run config of a `grid_search` run for one request."""
    return {"ops": {GRID_ASSET_NAME: {"ops": {LOAD_OP: {"config": {"request_id": request_id}}}}}}


def run_tags(request: GridRequest) -> dict[str, str]:
    """The request, and the tags run-queue limits use (`quant_platform/embedded_store`, `.../grid`)."""
    return {
        GRID_REQUEST_TAG: request.id,
        GRID_TAG: "true",
        EMBEDDED_TAG: "true",
        STRATEGY_TAG: tag_value(request.body.get("strategy", "")),
    }


def request_id_from(tags: Mapping[str, str], config: Mapping[str, Any] | None) -> str | None:
    """The grid request a run evaluates: its tag, else the `grid_load_klines` config of its run config."""
    if tags.get(GRID_REQUEST_TAG):
        return tags[GRID_REQUEST_TAG]

    def find(node: Any) -> str | None:
        if isinstance(node, dict):
            if LOAD_OP in node:
                return ((node[LOAD_OP] or {}).get("config") or {}).get("request_id")
            for value in node.values():
                found = find(value)
                if found:
                    return found
        return None

    return find(dict(config or {}))


# ------------------------------------------------------------------------------------------ watching


def watched_requests(store: WarmStore, limit: int = 1000) -> list[GridRequest]:
    """Searches submitted with `watch: true` (not re-runs themselves) that were not cancelled."""
    return [
        r
        for r in store.list_grid_requests(limit=limit)
        if r.body.get("watch") and not r.body.get("origin") and r.status is not Status.CANCELLED
    ]


def rerun_body(request: GridRequest, storage_id: int, partition: str | None) -> dict[str, Any]:
    """The body of a watched search's re-run for the klines materialization `storage_id`."""
    body = dict(request.body)
    start, end = dt.date.fromisoformat(body["start"]), dt.date.fromisoformat(body["end"])
    try:
        day = dt.date.fromisoformat(partition) if partition else None
    except ValueError:
        day = None
    if day is not None and day > end:  # roll the window forward, keeping its length
        start, end = start + (day - end), day
    body.update(
        start=start.isoformat(),
        end=end.isoformat(),
        watch=False,
        origin={"request_id": request.id, "klines_storage_id": int(storage_id), "partition": partition},
    )
    return body


def submit_reruns(
    store: WarmStore, storage_id: int, partition: str | None, timestamp: float
) -> list[GridRequest]:
    """Submit one re-run per watched search older than the materialization; idempotent per storage id."""
    from quant_platform.grid.spec import GridSpec, GridSpecError

    out = []
    for request in watched_requests(store):
        if request.created_at.timestamp() > timestamp:
            continue  # klines older than the search: it has already seen them
        body = rerun_body(request, storage_id, partition)
        try:
            body = GridSpec.from_body(body).body()
        except GridSpecError:
            continue  # e.g. the strategy was unregistered since; the original request says more
        out.append(store.submit_grid_request(body, f"{WATCH_KEY_PREFIX}{request.id}:{storage_id}"))
    return out


def age_seconds(ts: dt.datetime | None) -> float:
    """Seconds since `ts` (0 when unknown): how long a claimed request has waited for its run."""
    if ts is None:
        return 0.0
    return (dt.datetime.now(dt.UTC) - ts).total_seconds()
