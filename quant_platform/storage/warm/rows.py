"""Row helpers shared by the store sections: lookups that raise NotFound, and ORM row -> record
conversions, so no section returns or leaks an ORM object.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from quant_platform.storage import warm_models as m
from quant_platform.storage.warm.errors import NotFound
from quant_platform.storage.warm.lifecycle import Status
from quant_platform.storage.warm.records import (
    Account,
    Backtest,
    BacktestRun,
    GridRequest,
    ParamVersion,
    Strategy,
)


def _strategy_row(s: Session, name: str, *, lock: bool = False) -> m.StrategyRow:
    q = sa.select(m.StrategyRow).where(m.StrategyRow.name == name)
    if lock:
        q = q.with_for_update()
    row = s.scalars(q).one_or_none()
    if row is None:
        raise NotFound(f"strategy {name!r} does not exist")
    return row


def _strategy_name(s: Session, strategy_id: int) -> str:
    return s.scalar(sa.select(m.StrategyRow.name).where(m.StrategyRow.id == strategy_id)) or "?"


def _param_row(s: Session, st: m.StrategyRow, version: int | None) -> m.StrategyParamsRow:
    P = m.StrategyParamsRow
    q = sa.select(P).where(P.strategy_id == st.id)
    q = q.where(P.is_active.is_(True)) if version is None else q.where(P.version == int(version))
    row = s.scalars(q).one_or_none()
    if row is None:
        which = "an active parameter version" if version is None else f"parameter version {version}"
        raise NotFound(f"strategy {st.name!r} has no {which}")
    return row


def _deactivate(s: Session, strategy_id: int) -> None:
    P = m.StrategyParamsRow
    s.execute(
        sa.update(P)
        .where(P.strategy_id == strategy_id, P.is_active.is_(True))
        .values(is_active=None)
        .execution_options(synchronize_session="fetch")
    )


def _run_row(s: Session, run_id: str, *, lock: bool = False) -> m.BacktestRunRow:
    row = s.get(m.BacktestRunRow, run_id, with_for_update=lock or None)
    if row is None:
        raise NotFound(f"backtest run {run_id!r} does not exist")
    return row


def _grid_row(s: Session, request_id: str, *, lock: bool = False) -> m.GridRequestRow:
    row = s.get(m.GridRequestRow, request_id, with_for_update=lock or None)
    if row is None:
        raise NotFound(f"grid request {request_id!r} does not exist")
    return row


def _account(r: m.AccountRow, allocated: float = 0.0) -> Account:
    return Account(
        r.id,
        r.name,
        r.broker,
        r.currency,
        r.initial_cash,
        dict(r.meta or {}),
        r.created_at,
        float(r.current_capital),
        r.status,
        float(allocated),
    )


def _strategy(s: Session, r: m.StrategyRow) -> Strategy:
    P = m.StrategyParamsRow
    active = s.scalar(sa.select(P.version).where(P.strategy_id == r.id, P.is_active.is_(True)))
    return Strategy(r.id, r.name, r.description, r.created_at, active)


def _param_version(r: m.StrategyParamsRow, strategy: str) -> ParamVersion:
    return ParamVersion(
        strategy=strategy,
        version=r.version,
        params=dict(r.params or {}),
        note=r.note,
        active=bool(r.is_active),
        created_at=r.created_at,
        activated_at=r.activated_at,
    )


def _backtest(r: m.BacktestRow, strategy: str) -> Backtest:
    return Backtest(r.id, r.name, strategy, dict(r.config or {}), r.created_at)


def _run_record(r: m.BacktestRunRow, strategy: str) -> BacktestRun:
    return BacktestRun(
        id=r.id,
        strategy=strategy,
        backtest_id=r.backtest_id,
        grid_request_id=r.grid_request_id,
        param_version=r.param_version,
        params=dict(r.params or {}),
        status=Status(r.status),
        stats=r.stats,
        data_version=r.data_version,
        code_version=r.code_version,
        result_hash=r.result_hash,
        error=r.error,
        created_at=r.created_at,
        started_at=r.started_at,
        finished_at=r.finished_at,
    )


def _grid(r: m.GridRequestRow) -> GridRequest:
    return GridRequest(
        id=r.id,
        idempotency_key=r.idempotency_key,
        body=dict(r.body or {}),
        body_hash=r.body_hash,
        status=Status(r.status),
        progress=float(r.progress),
        best_params=r.best_params,
        error=r.error,
        created_at=r.created_at,
        updated_at=r.updated_at,
        started_at=r.started_at,
        finished_at=r.finished_at,
        summary=r.summary,
    )


def _grid_or_none(r: m.GridRequestRow | None) -> GridRequest | None:
    return None if r is None else _grid(r)
