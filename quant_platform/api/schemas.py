"""Request and response bodies of the HTTP API. Requests forbid unknown fields."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Symbol = Annotated[str, Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z._\-/]{0,31}$", max_length=32)]
ParamValue = float | int | bool
Params = dict[str, ParamValue]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenRequest(Strict):
    username: str = Field(min_length=1, max_length=50)
    password: str = Field(min_length=1, max_length=256)


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class Me(BaseModel):
    id: int
    username: str
    email: str | None
    role: str
    permissions: list[str]


class Window(Strict):
    start: dt.date
    end: dt.date


class Context(Strict):
    universe: list[Symbol] = Field(min_length=1, max_length=500)
    frequency: Literal["1d", "5m", "15m"] = Field(
        default="1d", description="1d: klines_daily; 5m / 15m: the cold tier's bars_5m / bars_15m"
    )
    window: Window


class BacktestCreate(Strict):
    strategy: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$", description="A registered strategy")
    params: Params | None = None
    context: Context
    notes: str | None = Field(default=None, max_length=2000)


class BacktestCreated(BaseModel):
    backtest_id: int


class Backtest(BaseModel):
    backtest_id: int
    strategy: str
    params: dict[str, Any]
    context: dict[str, Any]
    notes: str | None
    created_at: dt.datetime


class RunsCreate(Strict):
    mode: Literal["single", "grid"] = "single"
    params: dict[str, Any] | None = Field(
        default=None,
        description="single: {name: value}, merged over the backtest's params; "
        "grid: {name: 'start:stop:step' | [values] | 'v1,v2'}",
    )
    objective: str | None = Field(default=None, max_length=32, description="grid only (default sharpe)")
    max_evals: int | None = Field(default=None, ge=1, le=1_000_000, description="grid only")
    activate: Literal["if-validated", "best", "never"] | None = Field(
        default=None,
        description="grid only: whether the winner becomes the active parameter version "
        "(default if-validated: every planned combination evaluated and a positive objective)",
    )
    holdout: str | None = Field(
        default=None,
        max_length=32,
        description="grid only: out-of-sample window START..END after the backtest's window",
    )
    walk_forward: int | None = Field(
        default=None,
        ge=2,
        le=20,
        description="grid only: anchored walk-forward folds over the backtest's window (not with holdout)",
    )


class RunsCreated(BaseModel):
    run_ids: list[str] = []
    grid_request_id: str | None = None


class ArtifactLinks(BaseModel):
    equity: str
    trades: str
    report: str


class Run(BaseModel):
    run_id: str
    backtest_id: int | None
    strategy: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    progress: float
    message: str | None
    params: dict[str, Any]
    stats: dict[str, Any] | None
    error: str | None
    artifacts: ArtifactLinks | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class GridRequest(BaseModel):
    grid_request_id: str
    status: str
    progress: float
    best_params: dict[str, Any] | None
    summary: dict[str, Any] | None = Field(
        default=None,
        description="once the search ended: evaluated / planned, stop reason, PBO, deflated Sharpe "
        "(n_trials), holdout or walk-forward out-of-sample figures, activation decision and reason",
    )
    error: str | None
    created_at: dt.datetime


class ParamSpec(BaseModel):
    type: str
    default: Any
    min: float | None
    max: float | None
    doc: str


class StrategyInfo(BaseModel):
    name: str
    doc: str
    universe: str
    params: dict[str, ParamSpec] | None
    active_version: int | None


class ParamVersionCreate(Strict):
    params: Params
    note: str = Field(default="", max_length=2000)
    activate: bool = False


class ParamVersion(BaseModel):
    strategy: str
    version: int
    params: dict[str, Any]
    note: str
    active: bool
    created_at: dt.datetime
    activated_at: dt.datetime | None


class ParamDiff(BaseModel):
    added: dict[str, Any]
    removed: dict[str, Any]
    changed: dict[str, list[Any]]


class Rows(BaseModel):
    """A table as columns + rows (JSON-safe values; dates and times as ISO strings)."""

    columns: list[str]
    rows: list[list[Any]]
    count: int


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    stores: dict[str, dict[str, Any]]
    version: str


class ShareCreate(Strict):
    expires_in_days: int = Field(7, ge=1, le=30, description="Days until the link stops working (1-30)")


class ShareCreated(BaseModel):
    share_id: str
    url: str  # path of GET /api/v1/shared/{token} on this API: no credentials needed
    expires_at: dt.datetime


class ShareInfo(ShareCreated):
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    state: Literal["active", "expired", "revoked"]
