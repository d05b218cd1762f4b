"""Backtests and their runs. Runs execute in Dagster (`backtest_request_sensor` -> `backtest_request`
job), never in the web request; a grid run is a grid request (`grid.service`) for `grid_request_sensor`.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import Response

from quant_platform.api import progress, schemas
from quant_platform.api.auth import Principal, requires
from quant_platform.api.errors import conflict, invalid, not_found
from quant_platform.api.idempotency import HEADER, respond
from quant_platform.api.routers.common import owned_backtest, owned_run, state
from quant_platform.api.state import ApiState
from quant_platform.core.identity import BACKTEST_READ, BACKTEST_SUBMIT
from quant_platform.storage.warm import BacktestRun, IllegalTransition, Status

log = logging.getLogger(__name__)

router = APIRouter(prefix="/backtests", tags=["backtests"])
grid_router = APIRouter(prefix="/grid-requests", tags=["backtests"])

IdemKey = Header(None, alias=HEADER, max_length=255, description="Replays the first response for 24 h")
BacktestId = Path(ge=1, le=2**31 - 1)
RunId = Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
# A queued run whose sensor daemon has not beaten for this long is reported as waiting for it.
DAEMON_STALE_SECONDS = 120.0


def _validate_params(strategy: str, params: dict[str, Any] | None) -> dict[str, Any]:
    from quant_platform import backtest

    try:
        return backtest.validate_params(strategy, params or {})
    except (ValueError, KeyError, TypeError) as exc:
        raise invalid(str(exc)[:500], {"field": "params"}) from None


def _validate_context(st: ApiState, ctx: schemas.Context) -> dict[str, Any]:
    from quant_platform.client import validate_symbols
    from quant_platform.core.limits import check_symbol_count, check_window

    try:
        symbols = validate_symbols(ctx.universe)
        check_symbol_count(len(symbols))
        start, end = check_window(ctx.window.start, ctx.window.end, st.settings.calendar)
    except ValueError as exc:
        raise invalid(str(exc)[:500], {"field": "context"}) from None
    return {
        "universe": symbols,
        "frequency": ctx.frequency,
        "window": {"start": start.isoformat(), "end": end.isoformat()},
    }


def _view(bt) -> schemas.Backtest:
    cfg = bt.config
    return schemas.Backtest(
        backtest_id=bt.id,
        strategy=bt.strategy,
        params=cfg.get("params", {}),
        context=cfg.get("context", {}),
        notes=cfg.get("notes"),
        created_at=bt.created_at,
    )


@router.post("", status_code=201, response_model=schemas.BacktestCreated)
def create_backtest(
    body: schemas.BacktestCreate,
    request: Request,
    principal: Principal = Depends(requires(BACKTEST_SUBMIT)),
    idempotency_key: str | None = IdemKey,
) -> Response:
    """Define a backtest: strategy, parameters and the data context (universe, 1d, window)."""
    st = state(request)

    def make() -> dict[str, Any]:
        params = _validate_params(body.strategy, body.params)
        context = _validate_context(st, body.context)
        st.warm.create_strategy(body.strategy, exist_ok=True)
        window = context["window"]
        name = f"{body.strategy} {window['start']}..{window['end']}"
        config = {"params": params, "context": context, "notes": body.notes}
        bt = st.warm.create_backtest(name, body.strategy, config)
        st.warm.set_owner("backtest", bt.id, principal.id)
        return {"backtest_id": bt.id}

    return respond(request, principal, idempotency_key, body, make, 201)


@router.get("", response_model=list[schemas.Backtest])
def list_backtests(
    request: Request, principal: Principal = Depends(requires(BACKTEST_READ))
) -> list[schemas.Backtest]:
    """Your backtests (admins: everyone's), oldest first."""
    st = state(request)
    backtests = st.warm.list_backtests()
    if not principal.is_admin:
        mine = set(st.warm.owned_ids("backtest", principal.id))
        backtests = [b for b in backtests if str(b.id) in mine]
    return [_view(b) for b in backtests]


@router.get("/{backtest_id}", response_model=schemas.Backtest)
def get_backtest(
    request: Request,
    backtest_id: int = BacktestId,
    principal: Principal = Depends(requires(BACKTEST_READ)),
) -> schemas.Backtest:
    return _view(owned_backtest(state(request), principal, backtest_id))


@router.post("/{backtest_id}/runs", status_code=202, response_model=schemas.RunsCreated)
def create_runs(
    body: schemas.RunsCreate,
    request: Request,
    backtest_id: int = BacktestId,
    principal: Principal = Depends(requires(BACKTEST_SUBMIT)),
    idempotency_key: str | None = IdemKey,
) -> Response:
    """Queue runs: `single` (one run, params merged over the backtest's) or `grid` (a grid request)."""
    st = state(request)

    def make() -> dict[str, Any]:
        bt = owned_backtest(st, principal, backtest_id)
        if body.mode == "single":
            grid_only = (body.objective, body.max_evals, body.activate, body.holdout, body.walk_forward)
            if any(v is not None for v in grid_only):
                raise invalid(
                    "objective, max_evals, activate, holdout and walk_forward apply to mode 'grid' only"
                )
            params = _validate_params(bt.strategy, {**bt.config.get("params", {}), **(body.params or {})})
            run = st.warm.request_backtest_run(bt.id, params)
            return {"run_ids": [run.id], "grid_request_id": None}
        return {"run_ids": [], "grid_request_id": _submit_grid(st, principal, bt, body)}

    return respond(
        request, principal, idempotency_key, {"backtest_id": backtest_id, **body.model_dump()}, make, 202
    )


def _submit_grid(st: ApiState, principal: Principal, bt, body: schemas.RunsCreate) -> str:
    from quant_platform.grid import service
    from quant_platform.grid.spec import GridSpecError

    if not body.params:
        raise invalid("mode 'grid' needs params: {name: 'start:stop:step' | [values] | 'v1,v2'}")
    ctx = bt.config.get("context", {})
    try:
        req = service.submit(
            bt.strategy,
            body.params,
            start=ctx["window"]["start"],
            end=ctx["window"]["end"],
            symbols=ctx["universe"],
            objective=body.objective or "sharpe",
            max_evals=body.max_evals,
            activate=body.activate or "if-validated",
            holdout=body.holdout,
            walk_forward=body.walk_forward,
            frequency=ctx.get("frequency", "1d"),
            idempotency_key=f"api:{principal.id}:{uuid.uuid4().hex}",
            store=st.warm,
        )
    except (GridSpecError, ValueError) as exc:
        raise invalid(str(exc)[:500], {"field": "params"}) from None
    st.warm.set_owner("grid", req.id, principal.id)
    return req.id


@router.get("/{backtest_id}/runs", response_model=list[schemas.Run])
def list_runs(
    request: Request,
    backtest_id: int = BacktestId,
    limit: int = Query(100, ge=1, le=1000),
    principal: Principal = Depends(requires(BACKTEST_READ)),
) -> list[schemas.Run]:
    """The backtest's runs, newest first."""
    st = state(request)
    owned_backtest(st, principal, backtest_id)
    return [run_view(st, r) for r in st.warm.list_runs(backtest_id=backtest_id, limit=limit)]


@router.get("/{backtest_id}/runs/{run_id}", response_model=schemas.Run)
def get_run(
    request: Request,
    backtest_id: int = BacktestId,
    run_id: str = RunId,
    principal: Principal = Depends(requires(BACKTEST_READ)),
) -> schemas.Run:
    """Status (queued | running | succeeded | failed | cancelled), progress, params, stats, artifact links."""
    st = state(request)
    return run_view(st, owned_run(st, principal, run_id, backtest_id))


@router.post("/{backtest_id}/runs/{run_id}:cancel", status_code=204, response_class=Response)
def cancel_run(
    request: Request,
    backtest_id: int = BacktestId,
    run_id: str = RunId,
    principal: Principal = Depends(requires(BACKTEST_SUBMIT)),
    idempotency_key: str | None = IdemKey,
) -> Response:
    """Cancel a queued or running run; cancelling a cancelled run is fine (204), a finished one CONFLICT."""
    st = state(request)

    def make() -> None:
        owned_run(st, principal, run_id, backtest_id)
        try:
            st.warm.cancel_run(run_id)
        except IllegalTransition as exc:
            raise conflict(str(exc)) from None
        progress.publish(st.hot(), run_id, "cancelled", "cancelled")  # ends event streams
        _cancel_dagster_run(st, run_id)

    return respond(request, principal, idempotency_key, {"run_id": run_id}, make, 204)


def _cancel_dagster_run(st: ApiState, run_id: str) -> None:
    """Ask Dagster to stop the run executing the request, once nothing else of its batch is left.

    A queued (or not yet launched) Dagster run is cancelled where it stands; a starting or started one
    is terminated (`run_coordinator.cancel_run`: CANCELING, then the run worker is interrupted). A
    batch that still holds other live requests keeps running: the job skips or drops the cancelled
    one (it re-reads the status). Best effort: the warm record is cancelled already and the job
    honours it.
    """
    try:
        import dagster as dg

        from quant_platform.api.dagster.runs import JOB, run_ids_of

        instance = st.dagster_instance()
        live = [
            dg.DagsterRunStatus.QUEUED,
            dg.DagsterRunStatus.NOT_STARTED,
            dg.DagsterRunStatus.STARTING,
            dg.DagsterRunStatus.STARTED,
        ]
        for run in instance.get_runs(filters=dg.RunsFilter(job_name=JOB, statuses=live), limit=100):
            ids = run_ids_of(run.run_config)
            if run_id not in ids:
                continue
            others = [r for r in ids if r != run_id]
            if any(_live(st, r) for r in others):
                continue
            if run.status in (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED):
                instance.report_run_canceling(run, message=f"backtest run {run_id} was cancelled")
                instance.report_run_canceled(run)  # what the queued run coordinator does
            else:
                instance.run_coordinator.cancel_run(run.run_id)
    except Exception as exc:  # noqa: BLE001 - the warm record is already cancelled; the job honours it
        log.warning("asking Dagster to stop the run of %s failed: %s", run_id, type(exc).__name__)


def _live(st: ApiState, run_id: str) -> bool:
    try:
        return Status(st.warm.get_run(run_id).status) in (Status.QUEUED, Status.RUNNING)
    except Exception:  # noqa: BLE001 - a record that cannot be read does not keep a batch alive
        return False


def run_view(st: ApiState, run: BacktestRun) -> schemas.Run:
    status = Status(run.status)
    last = st.hot().last_run_event(run.id) if status is Status.RUNNING else None
    percent = progress.progress(status.value, last)
    message = None
    if status is Status.QUEUED:
        message = _queued_message(st, run)
    elif status is Status.RUNNING:
        message = "running in Dagster" + (f": {last['stage']}" if last and last.get("stage") else "")
    elif status is Status.FAILED:
        message = "failed: see error"
    artifacts = None
    if status is Status.SUCCEEDED:
        base = f"/api/v1/runs/{run.id}/artifacts"
        artifacts = schemas.ArtifactLinks(
            equity=f"{base}/equity", trades=f"{base}/trades", report=f"{base}/report"
        )
    return schemas.Run(
        run_id=run.id,
        backtest_id=run.backtest_id,
        strategy=run.strategy,
        status=status.value,
        progress=percent,
        message=message,
        params=run.params,
        stats=run.stats,
        error=run.error,
        artifacts=artifacts,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
    )


def _queued_message(st: ApiState, run: BacktestRun) -> str:
    try:
        from quant_platform.grid.dagster.sensors import sensor_daemon_age

        age = sensor_daemon_age(st.dagster_instance())
    except Exception:  # noqa: BLE001 - the status is still worth answering
        return "queued: the Dagster instance could not be read"
    if age is None or age > DAEMON_STALE_SECONDS:
        seen = "never" if age is None else f"{age:.0f} s ago"
        return (
            f"queued: no Dagster sensor daemon is running (last heartbeat: {seen}); the run starts once "
            "one is (`make ui` / `dagster dev`, or `dagster-daemon run`)"
        )
    request = st.warm.get_backtest_request(run.id)
    if request is not None and request.launched_at is not None:
        return "queued: launched in Dagster, waiting for the run to start"
    return "queued: waiting for backtest_request_sensor to launch it"


@grid_router.get("/{grid_request_id}", response_model=schemas.GridRequest)
def get_grid_request(
    request: Request,
    grid_request_id: str = Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$"),
    principal: Principal = Depends(requires(BACKTEST_READ)),
) -> schemas.GridRequest:
    """A grid request submitted with mode 'grid': status, progress, best parameters and, once it ended,
    its summary (counts, stop reason, PBO, deflated Sharpe, out-of-sample figures, activation)."""
    from quant_platform.storage.warm import NotFound

    st = state(request)
    message = f"grid request {grid_request_id!r} does not exist"
    if not principal.is_admin and st.warm.owner_of("grid", grid_request_id) != principal.id:
        raise not_found(message)
    try:
        g = st.warm.get_grid_request(grid_request_id)
    except NotFound:
        raise not_found(message) from None
    return schemas.GridRequest(
        grid_request_id=g.id,
        status=str(g.status),
        progress=g.progress,
        best_params=g.best_params,
        summary=g.summary,
        error=g.error,
        created_at=g.created_at,
    )
