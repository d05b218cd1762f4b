"""`quant-platform users ...` (accounts and API keys of the HTTP API) and `quant-platform serve`.

Errors are one line and exit 2 (bad value, existing name) or 1 (not found, store down), like every
other command (`cli._Commands`).
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table

users_app = typer.Typer(help="Users and API keys of the HTTP API.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: create (shown once), revoke, list.", no_args_is_help=True)
users_app.add_typer(keys_app, name="keys")
console = Console()


def _store():
    from quant_platform.settings import StoreSettings
    from quant_platform.storage.warm import WarmStore

    store = WarmStore(StoreSettings.from_env().warehouse_url)
    store.migrate()
    return store


def _exists_is_bad_input(fn):
    from quant_platform.storage.warm import AlreadyExists

    try:
        return fn()
    except AlreadyExists as exc:
        raise ValueError(str(exc)) from None


@users_app.command("create")
def create_user(
    username: str = typer.Argument(..., help="3-50 characters: letters, digits, _ . -"),
    role: str = typer.Option(..., help="admin | developer | trader | viewer"),
    email: str | None = typer.Option(None, help="Unique email address"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input (else: API keys only)"
    ),
) -> None:
    """Create a user; with --password-stdin they can also log in with a password."""
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    with _store() as store:
        user = _exists_is_bad_input(lambda: store.create_user(username, role, email=email, password=password))
    console.print(f"created user {user.username} ({user.role}, id {user.id})")


@users_app.command("list")
def list_users() -> None:
    """Every user with role, status and failed logins."""
    with _store() as store:
        users = store.list_users()
    table = Table()
    for col in ("id", "username", "email", "role", "status", "failed logins", "created"):
        table.add_column(col)
    for u in users:
        table.add_row(
            str(u.id),
            u.username,
            u.email or "",
            u.role,
            u.status,
            str(u.failed_logins),
            f"{u.created_at:%Y-%m-%d}",
        )
    console.print(table)


@users_app.command("status")
def set_status(
    username: str = typer.Argument(...),
    status: str = typer.Argument(..., help="active | inactive | locked"),
) -> None:
    """Activate, deactivate or lock a user (activating also clears a login lock)."""
    with _store() as store:
        user = store.set_user_status(username, status)
    console.print(f"user {user.username} is {user.status}")


@keys_app.command("create")
def create_key(
    username: str = typer.Argument(...),
    name: str = typer.Option("", help="What the key is for"),
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    with _store() as store:
        key, secret = store.create_api_key(username, name)
    console.print(f"API key {key.id} for {key.username} (shown once, store it now):", highlight=False)
    typer.echo(secret)


@keys_app.command("revoke")
def revoke_key(key_id: str = typer.Argument(..., help="The key id (qp_<id>_...)")) -> None:
    """Revoke an API key (revoking twice is fine)."""
    with _store() as store:
        key = store.revoke_api_key(key_id)
    console.print(f"API key {key.id} of {key.username} revoked at {key.revoked_at:%Y-%m-%d %H:%M:%S} UTC")


@keys_app.command("list")
def list_keys(username: str | None = typer.Argument(None)) -> None:
    """API keys (ids only), optionally of one user."""
    with _store() as store:
        keys = store.list_api_keys(username)
    table = Table()
    for col in ("id", "user", "name", "created", "revoked"):
        table.add_column(col)
    for k in keys:
        table.add_row(k.id, k.username, k.name, f"{k.created_at:%Y-%m-%d}", f"{k.revoked_at or ''}")
    console.print(table)


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on"),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port"),
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs)."""
    import uvicorn

    from quant_platform.api.app import create_app
    from quant_platform.settings import API_REQUIRED, settings

    current = settings().require(*API_REQUIRED)
    app = create_app(current)
    # QP_LOG_FORMAT=json: uvicorn's loggers go through the root logger's JSON lines (cli._configure_logs)
    log_config = None if current.log_format == "json" else uvicorn.config.LOGGING_CONFIG
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        server_header=False,
        access_log=True,
        log_config=log_config,
    )
