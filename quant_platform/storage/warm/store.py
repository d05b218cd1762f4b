"""The WarmStore class: one short, retried transaction per public method.

The records, errors, lifecycle, engines and row helpers it uses live in the sibling modules of this
package; see the package docstring for the design.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.orm import Session
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from quant_platform.storage import warm_models as m
from quant_platform.storage.warm.engine import (
    _mysql_engine,
    _sqlite_engine,
    alembic_config,
    mask_url,
    normalize_url,
)
from quant_platform.storage.warm.errors import (
    AlreadyExists,
    IdempotencyConflict,
    IllegalTransition,
    NotFound,
    StoreUnavailable,
    _is_constraint_violation,
    _is_missing_table,
    _short,
    is_transient,
)
from quant_platform.storage.warm.lifecycle import Status, apply_transition
from quant_platform.storage.warm.records import (
    Account,
    Backtest,
    BacktestRun,
    GridRequest,
    ParamDiff,
    ParamVersion,
    PingResult,
    Strategy,
    _check_id,
    _check_text,
    _new_id,
    body_hash,
    diff_mappings,
    json_safe,
)
from quant_platform.storage.warm.rows import (
    _account,
    _backtest,
    _deactivate,
    _grid,
    _grid_or_none,
    _grid_row,
    _param_row,
    _param_version,
    _run_record,
    _run_row,
    _strategy,
    _strategy_name,
    _strategy_row,
)

# The logger keeps the name the warm tier had as a single module, so logging configs stay valid.
log = logging.getLogger("quant_platform.storage.warm")

T = TypeVar("T")


class WarmStore:
    """Relational store of accounts, strategies, parameter versions, backtests, runs and grid requests.

    Construct it with a URL (`sqlite:///path/warehouse.sqlite` or `mysql+pymysql://user:pw@host/db`)
    and call `migrate()` once at startup. `lock_timeout` is how long one attempt waits for a lock
    (SQLite busy timeout, InnoDB lock wait timeout) before the retry policy takes over; `attempts`,
    `retry_initial` and `retry_max` shape that policy. The methods return frozen dataclasses, never
    ORM objects, so callers cannot lazily load anything after the transaction has ended.
    """

    def __init__(
        self,
        url: str | sa.URL,
        *,
        connect_timeout: float = 5.0,
        lock_timeout: float = 15.0,
        attempts: int = 5,
        retry_initial: float = 0.05,
        retry_max: float = 2.0,
        echo: bool = False,
    ) -> None:
        self.url = normalize_url(url)
        self.masked_url = mask_url(self.url)
        self.backend = "sqlite" if self.url.get_backend_name() == "sqlite" else "mysql"
        self._attempts = max(1, attempts)
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        if self.backend == "sqlite":
            self.engine = _sqlite_engine(self.url, echo, lock_timeout)
        else:
            self.engine = _mysql_engine(self.url, echo, connect_timeout, lock_timeout)

    @classmethod
    def from_env(cls, **kwargs: Any) -> WarmStore:
        """The store named by `QP_WAREHOUSE_URL` (default: SQLite under `QP_HOME`)."""
        from quant_platform.settings import StoreSettings

        return cls(StoreSettings.from_env().warehouse_url, **kwargs)

    def __repr__(self) -> str:
        return f"WarmStore({self.masked_url!r})"

    def __enter__(self) -> WarmStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close pooled connections; the store reconnects if used again."""
        self.engine.dispose()

    # ------------------------------------------------------------------------------ transactions

    def _retrying(self, fn: Callable[[], T]) -> T:
        """Run `fn` again on transient errors; report everything connection-related as StoreUnavailable."""
        retrying = Retrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential_jitter(initial=self._retry_initial, max=self._retry_max),
            retry=retry_if_exception(is_transient),
            reraise=True,
            before_sleep=lambda rs: log.warning(
                "warm store %s: transient error, retry %d: %s",
                self.masked_url,
                rs.attempt_number,
                _short(rs.outcome.exception()) if rs.outcome else "?",
            ),
        )
        try:
            return retrying(fn)
        except (exc.OperationalError, exc.InterfaceError) as err:
            if _is_constraint_violation(err):
                raise
            hint = " (schema missing: run WarmStore.migrate())" if _is_missing_table(err) else ""
            raise StoreUnavailable(f"warm store {self.masked_url}: {_short(err)}{hint}") from err
        except exc.DBAPIError as err:
            if err.connection_invalidated:
                raise StoreUnavailable(f"warm store {self.masked_url}: {_short(err)}") from err
            raise

    @contextmanager
    def _connection(self, write: bool) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn:
            if write:
                conn.execution_options(qp_write=True)
            with conn.begin():
                yield conn

    def _run(self, fn: Callable[[Session], T], *, write: bool = True) -> T:
        """Run `fn` in one transaction, retrying the whole transaction on transient errors."""

        def attempt() -> T:
            with self._connection(write) as conn, Session(bind=conn, expire_on_commit=False) as session:
                result = fn(session)
                session.flush()
                return result

        return self._retrying(attempt)

    # -------------------------------------------------------------------------------- migrations

    def migrate(self, revision: str = "head") -> str | None:
        """Upgrade the schema to `revision` (default: the newest) and return the resulting version.

        This is safe to call from several processes at once. MySQL serializes them with a named
        lock, and SQLite does the same with its write lock, because the whole upgrade runs in one
        transaction.
        """
        from alembic import command

        cfg = alembic_config()

        def attempt() -> None:
            with self.engine.connect() as conn:
                lock = self._migration_lock_name() if self.backend == "mysql" else None
                if lock:
                    got = conn.execute(sa.text("SELECT GET_LOCK(:n, 300)"), {"n": lock}).scalar()
                    conn.commit()
                    if got != 1:
                        raise StoreUnavailable(f"warm store {self.masked_url}: timed out waiting for {lock}")
                try:
                    conn.execution_options(qp_write=True)
                    with conn.begin():
                        cfg.attributes["connection"] = conn
                        command.upgrade(cfg, revision)
                finally:
                    cfg.attributes.pop("connection", None)
                    if lock:
                        conn.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": lock})
                        conn.commit()

        self._retrying(attempt)
        return self.schema_version()

    def downgrade(self, revision: str) -> str | None:
        """Downgrade to `revision` ("base" drops every table). For tests and emergency rollbacks."""
        from alembic import command

        cfg = alembic_config()

        def attempt() -> None:
            with self._connection(write=True) as conn:
                cfg.attributes["connection"] = conn
                command.downgrade(cfg, revision)

        self._retrying(attempt)
        return self.schema_version()

    def _migration_lock_name(self) -> str:
        digest = hashlib.sha1(f"{self.url.host}:{self.url.port}/{self.url.database}".encode()).hexdigest()
        return f"qp_warm_migrate_{digest[:24]}"

    def schema_version(self) -> str | None:
        """The Alembic revision the database is at, or None if it was never migrated."""
        from alembic.runtime.migration import MigrationContext

        def attempt() -> str | None:
            with self._connection(write=False) as conn:
                ctx = MigrationContext.configure(conn, opts={"version_table": m.VERSION_TABLE})
                return ctx.get_current_revision()

        return self._retrying(attempt)

    @staticmethod
    def head_version() -> str | None:
        """The newest revision shipped with this code."""
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(alembic_config()).get_current_head()

    def ping(self) -> PingResult:
        """Server version and round-trip latency of one trivial query, plus schema versions."""
        query = "SELECT sqlite_version()" if self.backend == "sqlite" else "SELECT VERSION()"

        def attempt() -> tuple[str, float]:
            with self.engine.connect() as conn:
                t0 = time.perf_counter()
                version = conn.exec_driver_sql(query).scalar()
                return str(version), (time.perf_counter() - t0) * 1000

        version, latency = self._retrying(attempt)
        return PingResult(
            url=self.masked_url,
            backend=self.backend,
            server_version=version,
            latency_ms=round(latency, 3),
            schema_version=self.schema_version(),
            head_version=self.head_version(),
        )

    # ---------------------------------------------------------------------------------- accounts

    def create_account(
        self,
        name: str,
        *,
        broker: str | None = None,
        currency: str = "CNY",
        initial_cash: float = 0.0,
        meta: Mapping[str, Any] | None = None,
        exist_ok: bool = False,
    ) -> Account:
        _check_text("account name", name, 128)

        def create(s: Session) -> Account:
            row = s.scalars(sa.select(m.AccountRow).where(m.AccountRow.name == name)).one_or_none()
            if row is not None:
                if exist_ok:
                    return _account(row)
                raise AlreadyExists(f"account {name!r} already exists")
            row = m.AccountRow(
                name=name,
                broker=broker,
                currency=currency,
                initial_cash=float(initial_cash),
                meta=json_safe(dict(meta or {})),
                created_at=m.utcnow(),
            )
            s.add(row)
            s.flush()
            return _account(row)

        return self._create(create, lambda: self.get_account(name), exist_ok, f"account {name!r}")

    def get_account(self, name: str) -> Account:
        def get(s: Session) -> Account:
            row = s.scalars(sa.select(m.AccountRow).where(m.AccountRow.name == name)).one_or_none()
            if row is None:
                raise NotFound(f"account {name!r} does not exist")
            return _account(row)

        return self._run(get, write=False)

    def list_accounts(self) -> list[Account]:
        return self._run(
            lambda s: [_account(r) for r in s.scalars(sa.select(m.AccountRow).order_by(m.AccountRow.name))],
            write=False,
        )

    def _create(self, create: Callable[[Session], T], get: Callable[[], T], exist_ok: bool, what: str) -> T:
        """Insert; on a lost race for the unique name return the winner's row (exist_ok) or raise."""
        try:
            return self._run(create)
        except exc.IntegrityError:
            if exist_ok:
                return get()
            raise AlreadyExists(f"{what} already exists") from None

    # -------------------------------------------------------------------------------- strategies

    def create_strategy(self, name: str, description: str = "", *, exist_ok: bool = False) -> Strategy:
        _check_text("strategy name", name, 128)

        def create(s: Session) -> Strategy:
            row = s.scalars(sa.select(m.StrategyRow).where(m.StrategyRow.name == name)).one_or_none()
            if row is not None:
                if exist_ok:
                    return _strategy(s, row)
                raise AlreadyExists(f"strategy {name!r} already exists")
            row = m.StrategyRow(name=name, description=description, created_at=m.utcnow())
            s.add(row)
            s.flush()
            return _strategy(s, row)

        return self._create(create, lambda: self.get_strategy(name), exist_ok, f"strategy {name!r}")

    def get_strategy(self, name: str) -> Strategy:
        return self._run(lambda s: _strategy(s, _strategy_row(s, name)), write=False)

    def list_strategies(self) -> list[Strategy]:
        return self._run(
            lambda s: [
                _strategy(s, r) for r in s.scalars(sa.select(m.StrategyRow).order_by(m.StrategyRow.name))
            ],
            write=False,
        )

    # ------------------------------------------------------------------------ strategy parameters

    def add_params(
        self, strategy: str, params: Mapping[str, Any], *, note: str = "", activate: bool = False
    ) -> ParamVersion:
        """Store `params` as the strategy's next version (1, 2, ...).

        The first version of a strategy is activated automatically, so a strategy that has
        parameters always has exactly one active version. Later versions are activated only with
        `activate=True` or `activate(strategy, version)`.
        """
        values = json_safe(dict(params))

        def add(s: Session) -> ParamVersion:
            st = _strategy_row(s, strategy, lock=True)  # serializes version numbering per strategy
            P = m.StrategyParamsRow
            last = s.scalar(sa.select(sa.func.max(P.version)).where(P.strategy_id == st.id)) or 0
            has_active = s.scalar(sa.select(P.id).where(P.strategy_id == st.id, P.is_active.is_(True)))
            make_active = activate or has_active is None
            now = m.utcnow()
            if make_active:
                _deactivate(s, st.id)
            row = P(
                strategy_id=st.id,
                version=last + 1,
                params=values,
                note=note,
                is_active=True if make_active else None,
                created_at=now,
                activated_at=now if make_active else None,
            )
            s.add(row)
            s.flush()
            return _param_version(row, strategy)

        return self._run(add)

    def activate(self, strategy: str, version: int) -> ParamVersion:
        """Make `version` the strategy's only active parameter version; a no-op if it already is."""

        def act(s: Session) -> ParamVersion:
            st = _strategy_row(s, strategy, lock=True)
            row = _param_row(s, st, version)
            if not row.is_active:
                _deactivate(s, st.id)
                s.flush()
                row.is_active = True
                row.activated_at = m.utcnow()
                s.flush()
            return _param_version(row, strategy)

        return self._run(act)

    def get_params(self, strategy: str, version: int | None = None) -> ParamVersion:
        """A given version, or the active one when `version` is None."""

        def get(s: Session) -> ParamVersion:
            st = _strategy_row(s, strategy)
            return _param_version(_param_row(s, st, version), strategy)

        return self._run(get, write=False)

    def list_param_versions(self, strategy: str) -> list[ParamVersion]:
        def lst(s: Session) -> list[ParamVersion]:
            st = _strategy_row(s, strategy)
            P = m.StrategyParamsRow
            rows = s.scalars(sa.select(P).where(P.strategy_id == st.id).order_by(P.version))
            return [_param_version(r, strategy) for r in rows]

        return self._run(lst, write=False)

    def diff_params(self, strategy: str, v1: int, v2: int) -> ParamDiff:
        """What changes going from version v1 to v2: added, removed and changed (old, new) keys."""

        def diff(s: Session) -> ParamDiff:
            st = _strategy_row(s, strategy)
            return diff_mappings(_param_row(s, st, v1).params, _param_row(s, st, v2).params)

        return self._run(diff, write=False)

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

    # ------------------------------------------------------------------------------ grid requests

    def submit_grid_request(self, body: Mapping[str, Any], idempotency_key: str) -> GridRequest:
        """Queue a grid search once per idempotency key.

        Submitting the same key with the same body again (a client retry) returns the existing
        request, whatever its status. The same key with a different body raises IdempotencyConflict.
        """
        _check_text("idempotency key", idempotency_key, 255)
        values = json_safe(dict(body))
        digest = body_hash(values)
        G = m.GridRequestRow

        def same_or_conflict(row: m.GridRequestRow) -> GridRequest:
            if row.body_hash != digest:
                raise IdempotencyConflict(
                    f"idempotency key {idempotency_key!r} was already used for grid request {row.id} "
                    f"with a different body (sha256 {row.body_hash[:12]} != {digest[:12]})"
                )
            return _grid(row)

        def lookup(s: Session) -> m.GridRequestRow | None:
            return s.scalars(sa.select(G).where(G.idempotency_key == idempotency_key)).one_or_none()

        def submit(s: Session) -> GridRequest:
            row = lookup(s)
            if row is not None:
                return same_or_conflict(row)
            now = m.utcnow()
            row = G(
                id=_new_id(),
                idempotency_key=idempotency_key,
                body=values,
                body_hash=digest,
                status=Status.QUEUED.value,
                progress=0.0,
                created_at=now,
                updated_at=now,
            )
            s.add(row)
            s.flush()
            return _grid(row)

        try:
            return self._run(submit)
        except exc.IntegrityError:  # a concurrent submit with the same key committed first
            return self._run(lambda s: same_or_conflict(lookup(s)), write=False)

    def get_grid_request(self, request_id: str) -> GridRequest:
        return self._run(lambda s: _grid(_grid_row(s, request_id)), write=False)

    def find_grid_request(self, idempotency_key: str) -> GridRequest | None:
        G = m.GridRequestRow
        return self._run(
            lambda s: _grid_or_none(
                s.scalars(sa.select(G).where(G.idempotency_key == idempotency_key)).one_or_none()
            ),
            write=False,
        )

    def list_grid_requests(self, *, status: str | None = None, limit: int = 100) -> list[GridRequest]:
        """Newest first."""
        G = m.GridRequestRow

        def lst(s: Session) -> list[GridRequest]:
            q = sa.select(G)
            if status is not None:
                q = q.where(G.status == Status(status).value)
            return [_grid(r) for r in s.scalars(q.order_by(G.created_at.desc(), G.id).limit(int(limit)))]

        return self._run(lst, write=False)

    def claim_queued_grid_requests(self, limit: int = 10) -> list[GridRequest]:
        """Move up to `limit` of the oldest queued requests to running and return them.

        This is safe for concurrent claimers. MySQL skips rows that another claimer holds locked
        (SKIP LOCKED), and SQLite serializes writers, so a request is never handed out twice. The
        caller (a sensor) should launch one run per request, keyed by the request id.
        """
        G = m.GridRequestRow

        def claim(s: Session) -> list[GridRequest]:
            q = (
                sa.select(G)
                .where(G.status == Status.QUEUED.value)
                .order_by(G.created_at, G.id)
                .limit(int(limit))
                .with_for_update(skip_locked=True)
            )
            rows = list(s.scalars(q))
            for row in rows:
                apply_transition(row, f"grid request {row.id}", Status.RUNNING)
            s.flush()
            return [_grid(r) for r in rows]

        return self._run(claim) if limit > 0 else []

    def update_grid_progress(
        self, request_id: str, progress: float, *, best_params: Mapping[str, Any] | None = None
    ) -> GridRequest:
        """Record progress (0-100) and optionally the best parameters so far for a running request.

        On a cancelled request nothing is written and the request is returned as it is. A worker
        checks `.status` on the result to notice the cancellation and stop.
        """
        p = float(progress)
        if not (0.0 <= p <= 100.0):
            raise ValueError(f"progress must be within 0..100, got {progress!r}")
        best = json_safe(dict(best_params)) if best_params is not None else None

        def upd(s: Session) -> GridRequest:
            row = _grid_row(s, request_id, lock=True)
            if row.status == Status.CANCELLED:
                return _grid(row)
            if row.status != Status.RUNNING:
                raise IllegalTransition(
                    f"grid request {request_id}: progress can only be reported while running, "
                    f"it is {row.status}"
                )
            row.progress = p
            if best is not None:
                row.best_params = best
            row.updated_at = m.utcnow()
            s.flush()
            return _grid(row)

        return self._run(upd)

    def finish_grid_request(self, request_id: str, *, best_params: Mapping[str, Any] | None) -> GridRequest:
        """running -> succeeded with progress 100 and the winning parameters."""
        best = json_safe(dict(best_params)) if best_params is not None else None
        return self._transition_grid(request_id, Status.SUCCEEDED, progress=100.0, best_params=best)

    def fail_grid_request(self, request_id: str, error: str) -> GridRequest:
        return self._transition_grid(request_id, Status.FAILED, error=str(error))

    def cancel_grid_request(self, request_id: str) -> GridRequest:
        """queued | running -> cancelled. Cancelling again is a no-op returning the same record."""
        return self._transition_grid(request_id, Status.CANCELLED)

    def _transition_grid(self, request_id: str, target: Status, **values: Any) -> GridRequest:
        def tr(s: Session) -> GridRequest:
            row = _grid_row(s, request_id, lock=True)
            if apply_transition(row, f"grid request {request_id}", target, **values):
                row.updated_at = row.finished_at or m.utcnow()
                s.flush()
            return _grid(row)

        return self._run(tr)
