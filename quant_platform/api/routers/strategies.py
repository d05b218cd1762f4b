"""Strategies (registered, with parameter specs) and parameter versions: list, create, activate, diff."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import Response

from quant_platform.api import schemas
from quant_platform.api.auth import Principal, requires
from quant_platform.api.errors import invalid, not_found
from quant_platform.api.idempotency import HEADER, respond
from quant_platform.api.routers.common import state
from quant_platform.core.identity import STRATEGY_MANAGE, STRATEGY_READ
from quant_platform.storage.warm import NotFound

router = APIRouter(prefix="/strategies", tags=["strategies"])
Name = Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
Version = Path(ge=1, le=2**31 - 1)


def _registered(name: str):
    from quant_platform.backtest import STRATEGIES

    spec = STRATEGIES.get(name)
    if spec is None:
        raise not_found(f"strategy {name!r} is not registered")
    return spec


def _version(v) -> schemas.ParamVersion:
    return schemas.ParamVersion(
        strategy=v.strategy,
        version=v.version,
        params=v.params,
        note=v.note,
        active=v.active,
        created_at=v.created_at,
        activated_at=v.activated_at,
    )


@router.get("", response_model=list[schemas.StrategyInfo])
def list_strategies(
    request: Request, principal: Principal = Depends(requires(STRATEGY_READ))
) -> list[schemas.StrategyInfo]:
    """Registered strategies with their parameter specs (type, default, bounds) and active version."""
    from quant_platform.backtest import STRATEGIES

    active = {s.name: s.active_version for s in state(request).warm.list_strategies()}
    out = []
    for name, spec in sorted(STRATEGIES.items()):
        params = (
            {
                k: schemas.ParamSpec(type=p.type.__name__, default=p.default, min=p.min, max=p.max, doc=p.doc)
                for k, p in spec.params.items()
            }
            if spec.params is not None
            else None
        )
        doc = spec.doc.splitlines()[0] if spec.doc else ""
        out.append(
            schemas.StrategyInfo(
                name=name, doc=doc, universe=spec.universe, params=params, active_version=active.get(name)
            )
        )
    return out


@router.get("/{name}/versions", response_model=list[schemas.ParamVersion])
def list_versions(
    request: Request, name: str = Name, principal: Principal = Depends(requires(STRATEGY_READ))
) -> list[schemas.ParamVersion]:
    _registered(name)
    try:
        return [_version(v) for v in state(request).warm.list_param_versions(name)]
    except NotFound:
        return []


@router.post("/{name}/versions", status_code=201, response_model=schemas.ParamVersion)
def create_version(
    body: schemas.ParamVersionCreate,
    request: Request,
    name: str = Name,
    principal: Principal = Depends(requires(STRATEGY_MANAGE)),
    idempotency_key: str | None = Header(None, alias=HEADER, max_length=255),
) -> Response:
    """Store validated parameters as the strategy's next version (the first one becomes active)."""
    from quant_platform import backtest

    st = state(request)

    def make() -> Any:
        _registered(name)
        try:
            params = backtest.validate_params(name, body.params)
        except ValueError as exc:
            raise invalid(str(exc)[:500], {"field": "params"}) from None
        st.warm.create_strategy(name, exist_ok=True)
        return _version(st.warm.add_params(name, params, note=body.note, activate=body.activate))

    return respond(request, principal, idempotency_key, {"strategy": name, **body.model_dump()}, make, 201)


@router.post("/{name}/versions/{version}:activate", response_model=schemas.ParamVersion)
def activate_version(
    request: Request,
    name: str = Name,
    version: int = Version,
    principal: Principal = Depends(requires(STRATEGY_MANAGE)),
    idempotency_key: str | None = Header(None, alias=HEADER, max_length=255),
) -> Response:
    """Make `version` the strategy's only active parameter version."""
    st = state(request)

    def make() -> Any:
        try:
            return _version(st.warm.activate(name, version))
        except NotFound as exc:
            raise not_found(str(exc)) from None

    return respond(request, principal, idempotency_key, {"strategy": name, "version": version}, make, 200)


@router.get("/{name}/diff", response_model=schemas.ParamDiff)
def diff_versions(
    request: Request,
    name: str = Name,
    from_version: int = Query(..., alias="from", ge=1, le=2**31 - 1),
    to_version: int = Query(..., alias="to", ge=1, le=2**31 - 1),
    principal: Principal = Depends(requires(STRATEGY_READ)),
) -> schemas.ParamDiff:
    """What changes going from version `from` to version `to`."""
    try:
        d = state(request).warm.diff_params(name, from_version, to_version)
    except NotFound as exc:
        raise not_found(str(exc)) from None
    return schemas.ParamDiff(
        added=d.added, removed=d.removed, changed={k: list(v) for k, v in d.changed.items()}
    )
