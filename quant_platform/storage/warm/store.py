"""Warm tier: the relational store for the research workflow (accounts, strategies, parameters, runs).

One code path covers SQLite (embedded, `sqlite:///path`) and MySQL/MariaDB (`mysql+pymysql://...`).
The schema belongs to the Alembic revisions in `storage/migrations`, and `WarmStore.migrate()` applies
them, so both engines get the same DDL and a deployed database can always say which schema version
it holds.

Every public method is one short transaction. Transient failures (lost connection, deadlock, lock
wait timeout, a locked SQLite file) make the whole transaction retry with exponential backoff and
jitter. If the retries run out, or the failure is not transient, the error surfaces as
`StoreUnavailable` with the store's URL (password masked), so the operator sees which database is
the problem. Domain errors have their own types (`NotFound`, `AlreadyExists`, `IllegalTransition`,
`IdempotencyConflict`) so that the CLI and the HTTP API can map them to clear messages or status codes.

Every query binds its values as parameters. Values are never formatted into SQL.

Supported servers: MySQL 8+ and MariaDB 10.6+, because claiming grid requests uses
`FOR UPDATE SKIP LOCKED`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import hashlib
import json
import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.orm import Session
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from quant_platform.storage import warm_models as m

# The logger keeps the name the warm tier had as a single module, so logging configs stay valid.
log = logging.getLogger("quant_platform.storage.warm")

T = TypeVar("T")

SUPPORTED_BACKENDS = ("sqlite", "mysql", "mariadb")
MIGRATIONS_LOCATION = "quant_platform.storage:migrations"


# --------------------------------------------------------------------------------------------- errors


class WarmStoreError(Exception):
    """Base of every error the warm store raises on purpose."""


class StoreUnavailable(WarmStoreError):
    """The database could not be reached or kept failing after retries; the message names the store."""


class NotFound(WarmStoreError, LookupError):
    pass


class AlreadyExists(WarmStoreError):
    pass


class IllegalTransition(WarmStoreError, ValueError):
    """A status change the run lifecycle does not allow (e.g. succeeded -> running)."""


class IdempotencyConflict(WarmStoreError):
    """The idempotency key was already used with a different request body."""


# ----------------------------------------------------------------------------------------- lifecycle


class Status(enum.StrEnum):
    """Lifecycle of backtest runs and grid requests: queued -> running -> succeeded | failed | cancelled.

    A queued item may also be cancelled or failed (e.g. it could not be launched) without running.
    """

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)


TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.QUEUED: frozenset({Status.RUNNING, Status.FAILED, Status.CANCELLED}),
    Status.RUNNING: frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED}),
    Status.SUCCEEDED: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELLED: frozenset(),
}


def check_transition(what: str, current: str, target: str) -> Status:
    """Return `target` as a Status, or raise IllegalTransition saying what would have been allowed."""
    cur, tgt = Status(current), Status(target)
    if tgt not in TRANSITIONS[cur]:
        allowed = ", ".join(sorted(TRANSITIONS[cur])) or "nothing (terminal)"
        raise IllegalTransition(f"{what}: cannot go from {cur} to {tgt}; from {cur} allowed: {allowed}")
    return tgt


# ------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    broker: str | None
    currency: str
    initial_cash: float
    meta: dict[str, Any]
    created_at: dt.datetime


@dataclass(frozen=True)
class Strategy:
    id: int
    name: str
    description: str
    created_at: dt.datetime
    active_version: int | None


@dataclass(frozen=True)
class ParamVersion:
    strategy: str
    version: int
    params: dict[str, Any]
    note: str
    active: bool
    created_at: dt.datetime
    activated_at: dt.datetime | None


@dataclass(frozen=True)
class ParamDiff:
    """Differences between two parameter versions. Nested dicts are compared by dotted key (`risk.stop`)."""

    added: dict[str, Any] = field(default_factory=dict)
    removed: dict[str, Any] = field(default_factory=dict)
    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass(frozen=True)
class Backtest:
    id: int
    name: str
    strategy: str
    config: dict[str, Any]
    created_at: dt.datetime


@dataclass(frozen=True)
class BacktestRun:
    id: str
    strategy: str
    backtest_id: int | None
    grid_request_id: str | None
    param_version: int | None
    params: dict[str, Any]
    status: Status
    stats: dict[str, Any] | None
    data_version: str | None
    code_version: str | None
    result_hash: str | None
    error: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


@dataclass(frozen=True)
class GridRequest:
    id: str
    idempotency_key: str
    body: dict[str, Any]
    body_hash: str
    status: Status
    progress: float
    best_params: dict[str, Any] | None
    error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


@dataclass(frozen=True)
class PingResult:
    """What `quant-platform selfcheck` prints for the warm tier."""

    url: str
    backend: str
    server_version: str
    latency_ms: float
    schema_version: str | None
    head_version: str | None

    @property
    def up_to_date(self) -> bool:
        return self.schema_version is not None and self.schema_version == self.head_version


# ------------------------------------------------------------------------------------- JSON helpers


def json_safe(value: Any) -> Any:
    """Make `value` storable as strict JSON, with identical results on every engine.

    NaN and infinities become None, because MySQL rejects them and SQLite would store them as
    non-standard JSON. Numpy scalars become Python numbers and tuples/sets become lists. Datetimes
    become ISO strings, and dict keys become strings.
    """
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((json_safe(v) for v in value), key=repr)
    if isinstance(value, decimal.Decimal):
        return json_safe(float(value))
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if hasattr(value, "item") and callable(value.item):  # numpy / pandas scalars
        return json_safe(value.item())
    raise TypeError(f"cannot store {type(value).__name__} as JSON: {value!r}")


def _dumps(value: Any) -> str:
    return json.dumps(json_safe(value), ensure_ascii=False, allow_nan=False)


def body_hash(body: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON (sorted keys, no whitespace) of a request body."""
    canonical = json.dumps(json_safe(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def diff_mappings(old: Mapping[str, Any], new: Mapping[str, Any]) -> ParamDiff:
    a, b = _flatten(old), _flatten(new)
    return ParamDiff(
        added={k: b[k] for k in b.keys() - a.keys()},
        removed={k: a[k] for k in a.keys() - b.keys()},
        changed={k: (a[k], b[k]) for k in a.keys() & b.keys() if a[k] != b[k]},
    )


# ------------------------------------------------------------------------------------- validation

_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def _check_text(what: str, value: str, max_len: int) -> str:
    """Lengths are checked here because SQLite ignores VARCHAR limits that MySQL enforces.

    Edge whitespace is rejected because MySQL compares `'a' = 'a '` as equal, while SQLite does not.
    """
    if not isinstance(value, str) or not value or value != value.strip() or len(value) > max_len:
        raise ValueError(f"{what} must be 1..{max_len} characters without edge whitespace, got {value!r}")
    return value


def _check_id(what: str, value: str) -> str:
    """Run ids end up in Redis channel names and URLs, so only a safe alphabet is allowed."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise ValueError(f"{what} must match {_ID_RE.pattern}, got {value!r}")
    return value


def _new_id() -> str:
    return uuid.uuid4().hex


# ---------------------------------------------------------------------------------- transient errors

# MySQL/MariaDB client and server error codes that a retry can cure.
_MYSQL_TRANSIENT = {
    1040,  # too many connections
    1205,  # lock wait timeout exceeded
    1213,  # deadlock found
    2002,  # can't connect (socket)
    2003,  # can't connect (tcp)
    2006,  # server has gone away
    2013,  # lost connection during query
    2014,  # commands out of sync (connection left in a bad state)
    2055,  # lost connection (system error)
    4031,  # MariaDB: disconnected by the server because of inactivity
}


def is_transient(err: BaseException) -> bool:
    """True for database errors worth retrying: lost connections, deadlocks, lock waits, busy SQLite."""
    if not isinstance(err, exc.DBAPIError):
        return False
    if err.connection_invalidated:
        return True
    if not isinstance(err, (exc.OperationalError, exc.InterfaceError)):
        return False
    args = getattr(err.orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in _MYSQL_TRANSIENT:
        return True
    message = str(err.orig).lower()
    return "database is locked" in message or "database is busy" in message


# CHECK constraint violations, which PyMySQL reports as OperationalError: bugs, not outages.
_MYSQL_CONSTRAINT = {3819, 4025}


def _is_constraint_violation(err: BaseException) -> bool:
    args = getattr(getattr(err, "orig", None), "args", ())
    return bool(args) and args[0] in _MYSQL_CONSTRAINT


def _is_missing_table(err: BaseException) -> bool:
    args = getattr(getattr(err, "orig", None), "args", ())
    return (bool(args) and args[0] == 1146) or "no such table" in str(getattr(err, "orig", err))


def _short(err: BaseException) -> str:
    orig = getattr(err, "orig", None) or err
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__


# ------------------------------------------------------------------------------------------ engine


def normalize_url(url: str | sa.URL) -> sa.URL:
    """Parse the URL, select PyMySQL for bare `mysql://` URLs and reject unsupported engines."""
    u = sa.make_url(url)
    backend = u.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise ValueError(f"warm store supports sqlite:/// and mysql+pymysql:// URLs, got {backend}://")
    if backend in ("mysql", "mariadb") and u.get_driver_name() != "pymysql":
        u = u.set(drivername=f"{backend}+pymysql")
    return u


def mask_url(url: str | sa.URL) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


def _sqlite_engine(url: sa.URL, echo: bool, lock_timeout: float) -> sa.Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or url.query.get("mode") == "memory"
    if not in_memory:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"connect_args": {"timeout": lock_timeout, "check_same_thread": False}}
    if in_memory:
        kwargs["poolclass"] = sa.pool.StaticPool
    engine = sa.create_engine(url, echo=echo, json_serializer=_dumps, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy issue BEGIN itself (below); pysqlite's implicit BEGIN is deferred and
        # starts too late for read-then-write transactions to be safe.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        if not in_memory:
            cur.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # Writers take the write lock up front (BEGIN IMMEDIATE), so two writers serialize cleanly.
        # A deferred transaction would instead fail half-way with "database is locked".
        immediate = conn.get_execution_options().get("qp_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _mysql_engine(url: sa.URL, echo: bool, connect_timeout: float, lock_timeout: float) -> sa.Engine:
    connect_args: dict[str, Any] = {"connect_timeout": max(1, math.ceil(connect_timeout))}
    if "charset" not in url.query:
        connect_args["charset"] = "utf8mb4"
    if "init_command" not in url.query:
        # Give up on a row lock after lock_timeout; the retry policy then runs the transaction again.
        connect_args["init_command"] = (
            f"SET SESSION innodb_lock_wait_timeout = {max(1, math.ceil(lock_timeout))}"
        )
    return sa.create_engine(
        url,
        echo=echo,
        json_serializer=_dumps,
        connect_args=connect_args,
        pool_pre_ping=True,  # a pooled connection the server dropped is replaced, not returned
        pool_recycle=1800,
        # READ COMMITTED avoids the gap locks (and deadlocks) that REPEATABLE READ takes on
        # lookups of rows that do not exist yet, e.g. a new idempotency key.
        isolation_level="READ COMMITTED",
    )


def alembic_config(url: str | sa.URL | None = None) -> Any:
    """An Alembic Config for the packaged migrations. No alembic.ini is needed.

    Use it to author revisions, e.g. `alembic.command.revision(alembic_config(url), autogenerate=True,
    message="add column")`.
    """
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS_LOCATION)
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", normalize_url(url).render_as_string(hide_password=False))
    return cfg


# ------------------------------------------------------------------------------------------ store


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
            if not (target is Status.CANCELLED and row.status == Status.CANCELLED):
                _apply_transition(row, f"backtest run {run_id}", target)
                for k, v in values.items():
                    setattr(row, k, v)
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
                _apply_transition(row, f"grid request {row.id}", Status.RUNNING)
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
            if target is Status.CANCELLED and row.status == Status.CANCELLED:
                return _grid(row)
            _apply_transition(row, f"grid request {request_id}", target)
            for k, v in values.items():
                setattr(row, k, v)
            row.updated_at = row.finished_at or m.utcnow()
            s.flush()
            return _grid(row)

        return self._run(tr)


# ------------------------------------------------------------------------------- row helpers


def _apply_transition(row: m.BacktestRunRow | m.GridRequestRow, what: str, target: Status) -> None:
    check_transition(what, row.status, target)
    now = m.utcnow()
    row.status = target.value
    if target is Status.RUNNING:
        row.started_at = now
    if target.terminal:
        row.finished_at = now


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


def _account(r: m.AccountRow) -> Account:
    return Account(r.id, r.name, r.broker, r.currency, r.initial_cash, dict(r.meta or {}), r.created_at)


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
    )


def _grid_or_none(r: m.GridRequestRow | None) -> GridRequest | None:
    return None if r is None else _grid(r)
