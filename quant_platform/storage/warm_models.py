"""SQLAlchemy models of the warm tier: accounts, strategies, parameter versions, backtests, grid searches.

These models describe the schema that the Alembic migrations in `storage/migrations/versions` build.
The migrations never import this module. Each revision has to keep working after the models change, so
a migration always spells its DDL out in full. `tests/storage/test_warm.py` compares a migrated
database with this metadata, so the two cannot drift apart without a failing test.

Portability rules (the same code runs on SQLite and MySQL/MariaDB):
- statuses are short strings with a CHECK constraint, not native ENUMs, which would need ALTERs
  to extend on MySQL;
- timestamps are stored as naive UTC with microseconds (`DATETIME(6)` on MySQL) and come back
  timezone-aware through `UTCDateTime`;
- string columns use the binary collation on MySQL, so that `Foo` and `foo` are different names on
  both engines (the MariaDB default collation would make them collide);
- "at most one active parameter version per strategy" is a UNIQUE index over
  (strategy_id, is_active). `is_active` holds TRUE or NULL, and because NULLs never collide in a
  unique index, any number of inactive versions can coexist while two active ones cannot. This
  works the same way on both engines and needs no partial index.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
# Alembic bookkeeping table; prefixed so the warehouse database can be shared with other tools.
VERSION_TABLE = "qp_alembic_version"

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """Stores naive UTC (neither engine keeps offsets) and returns aware UTC datetimes."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _status_check(column: str = "status") -> sa.CheckConstraint:
    allowed = ", ".join(f"'{s}'" for s in RUN_STATUSES)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name="status")


# Binary collation: names and keys compare case- and accent-sensitively on MySQL, like on SQLite.
_TABLE_ARGS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: sa.JSON()}


ACCOUNT_STATUSES = ("active", "inactive", "suspended")


class AccountRow(Base):
    """A trading or paper account that strategies trade for; the hot tier keys positions by its name.

    `current_capital` changes only through `WarmStore.update_capital`, which writes a
    `CapitalChangeRow` in the same transaction; `status` only through `apply_account_transition`.
    """

    __tablename__ = "accounts"
    __table_args__ = (
        sa.CheckConstraint(f"status IN ({', '.join(repr(s) for s in ACCOUNT_STATUSES)})", name="status"),
        sa.CheckConstraint("current_capital >= 0", name="capital_non_negative"),
        _TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(128), unique=True)
    broker: Mapped[str | None] = mapped_column(sa.String(64))
    currency: Mapped[str] = mapped_column(sa.String(8), default="CNY")
    initial_cash: Mapped[float] = mapped_column(sa.Double, default=0.0)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    current_capital: Mapped[float] = mapped_column(sa.Double, default=0.0, server_default="0")
    status: Mapped[str] = mapped_column(sa.String(16), default="active", server_default="active")
    status_changed_at: Mapped[dt.datetime | None] = mapped_column()


class CapitalChangeRow(Base):
    """One change of an account's current capital: the history `update_capital` appends to."""

    __tablename__ = "account_capital_changes"
    __table_args__ = (sa.Index(None, "account_id", "id"), _TABLE_ARGS)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"))
    previous: Mapped[float] = mapped_column(sa.Double)
    capital: Mapped[float] = mapped_column(sa.Double)
    reason: Mapped[str] = mapped_column(sa.String(255), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AllocationRow(Base):
    """Capital of an account given to a strategy, with its risk limit (max loss share of that capital).

    The allocations of an account never sum above its current capital (checked under the account's
    row lock by `WarmStore.allocate` and `update_capital`).
    """

    __tablename__ = "account_allocations"
    __table_args__ = (
        sa.UniqueConstraint("account_id", "strategy_id"),
        sa.CheckConstraint("allocated_capital >= 0", name="allocated_non_negative"),
        sa.CheckConstraint("risk_limit > 0 AND risk_limit <= 1", name="risk_limit_range"),
        _TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"))
    strategy_id: Mapped[int] = mapped_column(sa.ForeignKey("strategies.id", ondelete="CASCADE"), index=True)
    allocated_capital: Mapped[float] = mapped_column(sa.Double)
    risk_limit: Mapped[float] = mapped_column(sa.Double)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class StrategyRow(Base):
    __tablename__ = "strategies"
    __table_args__ = (_TABLE_ARGS,)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(128), unique=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class StrategyParamsRow(Base):
    """One immutable version of a strategy's parameters. `is_active` is TRUE or NULL, never FALSE."""

    __tablename__ = "strategy_params"
    __table_args__ = (
        sa.UniqueConstraint("strategy_id", "version"),
        sa.UniqueConstraint("strategy_id", "is_active"),
        sa.CheckConstraint("is_active IS NULL OR is_active = 1", name="active_true_or_null"),
        sa.CheckConstraint("version >= 1", name="version_positive"),
        _TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    strategy_id: Mapped[int] = mapped_column(sa.ForeignKey("strategies.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(sa.Integer)
    params: Mapped[dict[str, Any]] = mapped_column()
    note: Mapped[str] = mapped_column(sa.Text, default="")
    is_active: Mapped[bool | None] = mapped_column(sa.Boolean(create_constraint=False))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[dt.datetime | None] = mapped_column()


class BacktestRow(Base):
    """A named backtest definition (universe, date range, capital, ...) that runs execute."""

    __tablename__ = "backtests"
    __table_args__ = (_TABLE_ARGS,)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    strategy_id: Mapped[int] = mapped_column(sa.ForeignKey("strategies.id"), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class GridRequestRow(Base):
    """A parameter grid-search request: submitted once per idempotency key, claimed by a sensor."""

    __tablename__ = "grid_requests"
    __table_args__ = (
        _status_check(),
        sa.CheckConstraint("progress >= 0 AND progress <= 100", name="progress_range"),
        sa.Index(None, "status", "created_at"),
        _TABLE_ARGS,
    )

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(sa.String(255), unique=True)
    body: Mapped[dict[str, Any]] = mapped_column()
    body_hash: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16), default="queued")
    progress: Mapped[float] = mapped_column(sa.Double, default=0.0)
    best_params: Mapped[dict[str, Any] | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column()
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    # Written when the search ends: evaluated / planned counts, stop reason, PBO, deflated Sharpe.
    summary: Mapped[dict[str, Any] | None] = mapped_column()


class BacktestRunRow(Base):
    """One execution of a strategy with fixed parameters, data and code versions."""

    __tablename__ = "backtest_runs"
    __table_args__ = (
        _status_check(),
        sa.Index(None, "strategy_id", "created_at"),
        sa.Index(None, "status"),
        _TABLE_ARGS,
    )

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    strategy_id: Mapped[int] = mapped_column(sa.ForeignKey("strategies.id"))
    backtest_id: Mapped[int | None] = mapped_column(sa.ForeignKey("backtests.id"), index=True)
    grid_request_id: Mapped[str | None] = mapped_column(
        sa.String(64), sa.ForeignKey("grid_requests.id"), index=True
    )
    param_version: Mapped[int | None] = mapped_column(sa.Integer)
    params: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[str] = mapped_column(sa.String(16), default="queued")
    stats: Mapped[dict[str, Any] | None] = mapped_column()
    data_version: Mapped[str | None] = mapped_column(sa.String(64))
    code_version: Mapped[str | None] = mapped_column(sa.String(64))
    result_hash: Mapped[str | None] = mapped_column(sa.String(64))
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column()
    finished_at: Mapped[dt.datetime | None] = mapped_column()


# ------------------------------------------------------------------------------------------ identity
# Roles and permissions: `quant_platform.core.identity` (ROLE_PERMISSIONS is the one mapping).
_ROLES = "role IN ('admin', 'developer', 'trader', 'viewer')"
_USER_STATUSES = "status IN ('active', 'inactive', 'locked')"


class UserRow(Base):
    """A person or service using the HTTP API; `password_hash` is argon2 (None: API keys only)."""

    __tablename__ = "users"
    __table_args__ = (
        sa.CheckConstraint(_ROLES, name="role"),
        sa.CheckConstraint(_USER_STATUSES, name="status"),
        _TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(sa.String(50), unique=True)
    email: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    role: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    failed_logins: Mapped[int] = mapped_column(sa.Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ApiKeyRow(Base):
    """An API key: shown once, stored as sha256 of its secret, found by its public id (`qp_<id>_...`)."""

    __tablename__ = "api_keys"
    __table_args__ = (_TABLE_ARGS,)

    id: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(sa.String(64))
    name: Mapped[str] = mapped_column(sa.String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column()


class OwnershipRow(Base):
    """Who created a backtest or grid request (kind `backtest` | `grid`); runs follow their backtest."""

    __tablename__ = "ownership"
    __table_args__ = (_TABLE_ARGS,)

    kind: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    object_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)


class BacktestRequestRow(Base):
    """A backtest run requested through the API, launched by `backtest_request_sensor` as a Dagster run."""

    __tablename__ = "backtest_requests"
    __table_args__ = (_TABLE_ARGS,)

    run_id: Mapped[str] = mapped_column(
        sa.String(64), sa.ForeignKey("backtest_runs.id", ondelete="CASCADE"), primary_key=True
    )
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    launched_at: Mapped[dt.datetime | None] = mapped_column()


class IdempotencyRow(Base):
    """The first response to a POST with an Idempotency-Key, replayed for 24 h to the same user."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (sa.UniqueConstraint("user_id", "key"), _TABLE_ARGS)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(sa.String(255))
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int] = mapped_column(sa.Integer)
    response: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class ShareLinkRow(Base):
    """A read-only link to a run's report: the URL carries its id and an HMAC; the row makes it revocable."""

    __tablename__ = "share_links"
    __table_args__ = (_TABLE_ARGS,)

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    run_id: Mapped[str] = mapped_column(
        sa.String(64), sa.ForeignKey("backtest_runs.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column()
