"""Helpers shared by the routers: state, ownership, frames as JSON."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from fastapi import Request

from quant_platform.api.auth import Principal
from quant_platform.api.errors import not_found
from quant_platform.api.state import ApiState
from quant_platform.storage.warm import Backtest, BacktestRun, NotFound


def state(request: Request) -> ApiState:
    return request.app.state.qp


def owned_backtest(st: ApiState, principal: Principal, backtest_id: int) -> Backtest:
    """The backtest if it exists and is the caller's (admins: anyone's); NOT_FOUND otherwise."""
    message = f"backtest {backtest_id} does not exist"
    try:
        bt = st.warm.get_backtest(backtest_id)
    except NotFound:
        raise not_found(message) from None
    if not principal.is_admin and st.warm.owner_of("backtest", backtest_id) != principal.id:
        raise not_found(message)
    return bt


def owned_run(st: ApiState, principal: Principal, run_id: str, backtest_id: int | None = None) -> BacktestRun:
    """The run if the caller owns its backtest or grid request (admins: any run); NOT_FOUND otherwise."""
    message = f"run {run_id!r} does not exist"
    try:
        run = st.warm.get_run(run_id)
    except (NotFound, ValueError):
        raise not_found(message) from None
    if backtest_id is not None and run.backtest_id != backtest_id:
        raise not_found(message)
    if principal.is_admin:
        return run
    if run.backtest_id is not None and st.warm.owner_of("backtest", run.backtest_id) == principal.id:
        return run
    if run.grid_request_id is not None and st.warm.owner_of("grid", run.grid_request_id) == principal.id:
        return run
    raise not_found(message)


def frame_rows(df: pd.DataFrame) -> dict[str, Any]:
    """columns + rows, JSON-safe (NaN -> null, timestamps -> ISO strings)."""
    split = json.loads(df.to_json(orient="split", date_format="iso", index=False))
    return {"columns": split["columns"], "rows": split["data"], "count": len(split["data"])}
