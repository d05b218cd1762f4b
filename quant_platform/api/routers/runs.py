"""GET /api/v1/runs/{run_id}/artifacts/{equity|trades}?format=csv|json: a run's cold-tier results;
GET /api/v1/runs/{run_id}/events: Server-Sent Events of its progress (`api.events`)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from quant_platform.api import events, schemas
from quant_platform.api.auth import Principal, requires
from quant_platform.api.errors import not_found
from quant_platform.api.routers.common import frame_rows, owned_run, state
from quant_platform.core.identity import BACKTEST_READ

router = APIRouter(prefix="/runs", tags=["runs"])

TABLES = {"equity": "backtest_equity", "trades": "backtest_trades"}
RunId = Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$")


@router.get(
    "/{run_id}/artifacts/{artifact}",
    response_model=schemas.Rows,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def artifact(
    request: Request,
    run_id: str = RunId,
    artifact: Literal["equity", "trades"] = Path(),
    format: Literal["json", "csv"] = Query("json"),
    principal: Principal = Depends(requires(BACKTEST_READ)),
) -> Response:
    """A run's equity curve (per symbol, '*' = portfolio) or trades, as JSON rows or CSV."""
    st = state(request)
    run = owned_run(st, principal, run_id)
    if str(run.status) != "succeeded":
        raise not_found(f"run {run_id!r} has no artifacts (it is {run.status})")
    with st.cold() as cold:
        df = cold.read_run(TABLES[artifact], run_id)
    if format == "csv":
        return Response(
            df.to_csv(index=False),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{run_id}-{artifact}.csv"'},
        )
    return JSONResponse(frame_rows(df))


@router.get(
    "/{run_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
def run_events(
    request: Request,
    run_id: str = RunId,
    heartbeat: float = Query(15.0, ge=1.0, le=60.0, description="seconds between heartbeat comments"),
    timeout: float = Query(900.0, ge=1.0, le=3600.0, description="the stream ends after this many seconds"),
    principal: Principal = Depends(requires(BACKTEST_READ)),
) -> StreamingResponse:
    """Server-Sent Events: a `state` event, then the run's `progress` events until its terminal one."""
    st = state(request)
    owned_run(st, principal, run_id)
    return StreamingResponse(
        events.stream(st, run_id, heartbeat=heartbeat, timeout=timeout),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
