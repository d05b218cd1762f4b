"""Engines of the warm tier: URL handling, the SQLite and MySQL/MariaDB engine settings, and the
Alembic config, kept apart from the store so connection tuning has one place.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from quant_platform.storage.warm.records import _dumps

SUPPORTED_BACKENDS = ("sqlite", "mysql", "mariadb")
MIGRATIONS_LOCATION = "quant_platform.storage:migrations"


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
