"""The WarmStore class: connection, retried transactions, migrations and ping.

It composes the section mixins (accounts, strategies, runs, grid requests, identity, API requests,
share links),
which hold the domain methods and rely only on `_run` and `_create` from here; see the package
docstring for the design.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.orm import Session
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from quant_platform.storage import warm_models as m
from quant_platform.storage.warm.accounts import AccountsMixin
from quant_platform.storage.warm.api_requests import ApiRequestsMixin
from quant_platform.storage.warm.engine import (
    _mysql_engine,
    _sqlite_engine,
    alembic_config,
    mask_url,
    normalize_url,
)
from quant_platform.storage.warm.errors import (
    AlreadyExists,
    StoreUnavailable,
    _is_constraint_violation,
    _is_missing_table,
    _short,
    is_transient,
)
from quant_platform.storage.warm.grid_requests import GridRequestsMixin
from quant_platform.storage.warm.identity import IdentityMixin
from quant_platform.storage.warm.records import PingResult
from quant_platform.storage.warm.runs import RunsMixin
from quant_platform.storage.warm.share_links import ShareLinksMixin
from quant_platform.storage.warm.strategies import StrategiesMixin

# The logger keeps the name the warm tier had as a single module, so logging configs stay valid.
log = logging.getLogger("quant_platform.storage.warm")

T = TypeVar("T")


class WarmStore(
    AccountsMixin,
    StrategiesMixin,
    RunsMixin,
    GridRequestsMixin,
    IdentityMixin,
    ApiRequestsMixin,
    ShareLinksMixin,
):
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

    def _create(self, create: Callable[[Session], T], get: Callable[[], T], exist_ok: bool, what: str) -> T:
        """Insert; on a lost race for the unique name return the winner's row (exist_ok) or raise."""
        try:
            return self._run(create)
        except exc.IntegrityError:
            if exist_ok:
                return get()
            raise AlreadyExists(f"{what} already exists") from None

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
