"""Alembic environment of the warm tier.

`WarmStore.migrate()` runs this with its own open connection in `config.attributes["connection"]`,
so migrations share the store's engine settings (SQLite pragmas, MySQL timeouts, migration lock).

To author a new revision, point a scratch database at the models and let Alembic compare:

    from alembic import command
    from quant_platform.storage.warm import WarmStore, alembic_config
    WarmStore("sqlite:///scratch.sqlite").migrate()
    command.revision(alembic_config("sqlite:///scratch.sqlite"), autogenerate=True, message="...")

then review the generated file: revisions spell out their DDL and never import the models.
Without a URL in the config (or `-x url=...`), the URL comes from `QP_WAREHOUSE_URL`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context

from quant_platform.storage.warm_models import VERSION_TABLE, Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from quant_platform.settings import StoreSettings

    return StoreSettings.from_env().warehouse_url


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render our TypeDecorator as plain DDL types, so that revisions never import the models."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        autogen_context.imports.add("from sqlalchemy.dialects import mysql")
        return 'sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")'
    return False


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        compare_type=True,
        render_item=_render_item,
        **kwargs,
    )


def run_migrations_offline() -> None:
    """`alembic upgrade head --sql`: print the DDL for a DBA instead of executing it."""
    url = _url()
    _configure(url=url, literal_binds=True, render_as_batch=url.startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


def _run_with(connection: sa.Connection) -> None:
    # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    engine = sa.create_engine(_url(), poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            _run_with(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
