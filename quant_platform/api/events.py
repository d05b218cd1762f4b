"""Server-Sent Events of a run's progress (`GET /api/v1/runs/{run_id}/events`).

First a `state` event (the warm status, with the progress of the last hot-tier event), then each
`progress` event the `backtest_request` job publishes on `runs.{run_id}`, ending after the terminal
one. A stream is bounded: comments (`: heartbeat`) keep proxies from closing an idle stream, and after
`timeout` seconds a `timeout` event ends it (the client reconnects and gets the state again). Because a
run may end without publishing (its worker died), the warm status is re-read every few seconds and a
terminal status ends the stream with a `state` event. With the embedded in-process hot tier the job's
events never reach the API process, so the stream polls the warm status once a second and sends a
`state` event on each change instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from quant_platform.api import progress
from quant_platform.api.state import ApiState
from quant_platform.storage.warm import BacktestRun

POLL_SECONDS = 1.0
WARM_CHECK_SECONDS = 5.0  # a shared hot tier: how often the warm status is re-read meanwhile
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n"


def state_of(st: ApiState, run: BacktestRun) -> dict[str, Any]:
    status = str(run.status)
    last = st.hot().last_run_event(run.id) if status == "running" else None
    body: dict[str, Any] = {"run_id": run.id, "status": status, "progress": progress.progress(status, last)}
    if last and last.get("stage") and status == "running":
        body["stage"] = last["stage"]
    if run.error:
        body["error"] = run.error
    return body


def stream(st: ApiState, run_id: str, *, heartbeat: float, timeout: float) -> Iterator[str]:
    """The event stream of one run (its ownership is checked by the route before the first byte)."""
    deadline = time.monotonic() + timeout
    shared = progress.shared(st.settings.stores.redis_url)
    sub = st.hot().subscribe_run_events(run_id) if shared else None  # before the state: nothing is lost
    try:
        current = state_of(st, st.warm.get_run(run_id))
        yield sse("state", current)
        if current["status"] in TERMINAL:
            return
        beat = checked = time.monotonic()
        while (left := deadline - time.monotonic()) > 0:
            wait = min(POLL_SECONDS, left)
            evt = sub.get(timeout=wait) if sub is not None else time.sleep(wait)
            now = time.monotonic()
            if evt is not None:
                yield sse("progress", evt)
                beat = now
                if progress.is_terminal(evt):
                    return
                continue
            if sub is None or now - checked >= WARM_CHECK_SECONDS:
                checked = now
                state = state_of(st, st.warm.get_run(run_id))
                if state["status"] in TERMINAL or (sub is None and state != current):
                    current = state
                    yield sse("state", state)
                    beat = now
                    if state["status"] in TERMINAL:
                        return
            if now - beat >= heartbeat:
                yield ": heartbeat\n\n"
                beat = now
        yield sse("timeout", {"run_id": run_id, "after_seconds": timeout})
    finally:
        if sub is not None:
            sub.close()
