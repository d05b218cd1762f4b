"""WarmStore section: backtests and backtest runs, whose statuses move through `apply_transition`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.orm import Session

from quant_platform.storage import warm_models as m
from quant_platform.storage.warm.errors import AlreadyExists, NotFound
from quant_platform.storage.warm.lifecycle import Status, apply_transition
from quant_platform.storage.warm.records import (
    Backtest,
    BacktestRun,
    _check_id,
    _check_text,
    _new_id,
    json_safe,
)
from quant_platform.storage.warm.rows import (
    _backtest,
    _grid_row,
    _param_row,
    _run_record,
    _run_row,
    _strategy_name,
    _strategy_row,
)
from quant_platform.storage.warm.section import StoreSection


class RunsMixin(StoreSection):
    """Backtests and backtest runs: record them and move runs through their lifecycle."""

    # --------------------------------------------------------------------------------- backtests

    def create_backtest(self, name: str, strategy: str, config: Mapping[str, Any] | None = None) -> Backtest:
        _check_text("backtest name", name, 200)
        values = json_safe(dict(config or {}))

        def create(s: Session) -> Backtest:
            st = _strategy_row(s, strategy)
            row = m.BacktestRow(name=name, strategy_id=st.id, config=values, created_at=m.utcnow())
            s.add(row)
            s.flush()
            return _backtest(row, strategy)

        return self._run(create)

    def get_backtest(self, backtest_id: int) -> Backtest:
        def get(s: Session) -> Backtest:
            row = s.get(m.BacktestRow, backtest_id)
            if row is None:
                raise NotFound(f"backtest {backtest_id} does not exist")
            return _backtest(row, _strategy_name(s, row.strategy_id))

        return self._run(get, write=False)

    def list_backtests(self, strategy: str | None = None) -> list[Backtest]:
        def lst(s: Session) -> list[Backtest]:
            q = (
                sa.select(m.BacktestRow, m.StrategyRow.name)
                .join(m.StrategyRow, m.StrategyRow.id == m.BacktestRow.strategy_id)
                .order_by(m.BacktestRow.id)
            )
            if strategy is not None:
                q = q.where(m.StrategyRow.name == strategy)
            return [_backtest(row, name) for row, name in s.execute(q)]

        return self._run(lst, write=False)

    # ------------------------------------------------------------------------------ backtest runs

    def create_run(
        self,
        strategy: str,
        params: Mapping[str, Any] | None = None,
        *,
        backtest_id: int | None = None,
        grid_request_id: str | None = None,
        param_version: int | None = None,
        data_version: str | None = None,
        code_version: str | None = None,
        run_id: str | None = None,
    ) -> BacktestRun:
        """Record a queued run. Without `params` the strategy's active parameter version is used.

        `run_id` may be given (e.g. the Dagster run id) and must be unique. Otherwise a new uuid is
        generated.
        """
        rid = _check_id("run id", run_id) if run_id is not None else _new_id()

        def create(s: Session) -> BacktestRun:
            st = _strategy_row(s, strategy)
            if backtest_id is not None and s.get(m.BacktestRow, backtest_id) is None:
                raise NotFound(f"backtest {backtest_id} does not exist")
            if grid_request_id is not None:
                _grid_row(s, grid_request_id)
            values, version = (json_safe(dict(params)), param_version) if params is not None else (None, None)
            if values is None:
                pv = _param_row(s, st, param_version)
                values, version = pv.params, pv.version
            row = m.BacktestRunRow(
                id=rid,
                strategy_id=st.id,
                backtest_id=backtest_id,
                grid_request_id=grid_request_id,
                param_version=version,
                params=values,
                status=Status.QUEUED.value,
                data_version=data_version,
                code_version=code_version,
                created_at=m.utcnow(),
            )
            s.add(row)
            s.flush()
            return _run_record(row, strategy)

        try:
            return self._run(create)
        except exc.IntegrityError:
            raise AlreadyExists(f"backtest run {rid!r} already exists") from None

    def get_run(self, run_id: str) -> BacktestRun:
        return self._run(lambda s: self._run_record(s, _run_row(s, run_id)), write=False)

    def list_runs(
        self,
        *,
        strategy: str | None = None,
        status: str | None = None,
        backtest_id: int | None = None,
        grid_request_id: str | None = None,
        limit: int = 100,
    ) -> list[BacktestRun]:
        """Newest first."""
        R = m.BacktestRunRow

        def lst(s: Session) -> list[BacktestRun]:
            q = sa.select(R, m.StrategyRow.name).join(m.StrategyRow, m.StrategyRow.id == R.strategy_id)
            if strategy is not None:
                q = q.where(m.StrategyRow.name == strategy)
            if status is not None:
                q = q.where(R.status == Status(status).value)
            if backtest_id is not None:
                q = q.where(R.backtest_id == backtest_id)
            if grid_request_id is not None:
                q = q.where(R.grid_request_id == grid_request_id)
            q = q.order_by(R.created_at.desc(), R.id).limit(int(limit))
            return [_run_record(row, name) for row, name in s.execute(q)]

        return self._run(lst, write=False)

    def start_run(
        self, run_id: str, *, data_version: str | None = None, code_version: str | None = None
    ) -> BacktestRun:
        """queued -> running; records the data and code versions if they are known only now."""
        extra = {k: v for k, v in (("data_version", data_version), ("code_version", code_version)) if v}
        return self._transition_run(run_id, Status.RUNNING, **extra)

    def finish_run(
        self, run_id: str, *, stats: Mapping[str, Any], result_hash: str | None = None
    ) -> BacktestRun:
        """running -> succeeded, with the run's statistics and a hash of its results."""
        return self._transition_run(
            run_id, Status.SUCCEEDED, stats=json_safe(dict(stats)), result_hash=result_hash
        )

    def fail_run(self, run_id: str, error: str) -> BacktestRun:
        """queued | running -> failed, keeping the error message."""
        return self._transition_run(run_id, Status.FAILED, error=str(error))

    def cancel_run(self, run_id: str) -> BacktestRun:
        """queued | running -> cancelled. Cancelling a cancelled run is a no-op (idempotent)."""
        return self._transition_run(run_id, Status.CANCELLED)

    def _transition_run(self, run_id: str, target: Status, **values: Any) -> BacktestRun:
        def tr(s: Session) -> BacktestRun:
            row = _run_row(s, run_id, lock=True)
            if apply_transition(row, f"backtest run {run_id}", target, **values):
                s.flush()
            return self._run_record(s, row)

        return self._run(tr)

    @staticmethod
    def _run_record(s: Session, row: m.BacktestRunRow) -> BacktestRun:
        return _run_record(row, _strategy_name(s, row.strategy_id))
