"""Identity in the warm tier (users, argon2 passwords, login lockout, API keys, ownership) and the
`quant-platform users` commands, on SQLite and MariaDB."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from quant_platform.cli import app
from quant_platform.core import identity as ident
from quant_platform.storage import warm_models as m
from quant_platform.storage.warm import AlreadyExists, NotFound, WarmStore


@pytest.fixture(params=["sqlite", "mysql"])
def store(request, tmp_path):
    url = (
        f"sqlite:///{tmp_path / 'warm.sqlite'}"
        if request.param == "sqlite"
        else request.getfixturevalue("mysql_database_factory")()
    )
    s = WarmStore(url, retry_initial=0.01)
    s.migrate()
    yield s
    s.close()


def test_roles_and_permissions_are_one_table():
    assert set(ident.ROLE_PERMISSIONS) == set(ident.ROLES)
    assert ident.has_permission("admin", "user:manage") and not ident.has_permission(
        "developer", "user:manage"
    )
    assert ident.has_permission("trader", "backtest:submit") and not ident.has_permission(
        "viewer", "backtest:submit"
    )
    assert ident.has_permission("viewer", "backtest:read") and not ident.has_permission(
        "trader", "strategy:manage"
    )


def test_users_passwords_and_lockout(store: WarmStore):
    user = store.create_user("alice", "trader", email="alice@example.com", password="s3cret-pass")
    assert user.role == "trader" and user.status == "active" and not hasattr(user, "password_hash")
    stored = store._run(lambda s: s.scalar(sa.select(m.UserRow.password_hash)), write=False)
    assert stored.startswith("$argon2") and "s3cret" not in stored
    assert store.authenticate("alice", "s3cret-pass").username == "alice"
    assert store.authenticate("alice", "wrong") is None and store.authenticate("nobody", "x") is None
    with pytest.raises(AlreadyExists):
        store.create_user("alice", "viewer")
    with pytest.raises(AlreadyExists):
        store.create_user("alice2", "viewer", email="alice@example.com")
    for bad in ("ab", "x" * 51, "bad name", "-dash"):
        with pytest.raises(ValueError, match="username"):
            store.create_user(bad, "viewer")
    with pytest.raises(ValueError, match="role"):
        store.create_user("bob", "root")

    for _ in range(ident.MAX_FAILED_LOGINS):
        assert store.authenticate("alice", "wrong") is None
    locked = store.get_user("alice")
    assert locked.status == "locked" and locked.locked_until > dt.datetime.now(dt.UTC)
    assert store.authenticate("alice", "s3cret-pass") is None  # even the right password, while locked
    past = m.utcnow() - dt.timedelta(seconds=1)
    store._run(lambda s: s.execute(sa.update(m.UserRow).values(locked_until=past)))
    assert store.authenticate("alice", "s3cret-pass").failed_logins == 0  # the lock expired
    assert store.set_user_status("alice", "inactive").status == "inactive"
    assert store.authenticate("alice", "s3cret-pass") is None


def test_api_keys_are_shown_once_stored_hashed_and_revocable(store: WarmStore):
    store.create_user("svc", "viewer")
    key, secret = store.create_api_key("svc", "ci")
    assert secret.startswith(f"qp_{key.id}_") and store.user_for_api_key(secret).username == "svc"
    digest = store._run(lambda s: s.scalar(sa.select(m.ApiKeyRow.secret_hash)), write=False)
    assert secret.split("_", 2)[2] not in digest
    assert store.user_for_api_key(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert store.user_for_api_key("qp_nope") is None
    assert store.revoke_api_key(key.id).revoked_at is not None
    assert store.revoke_api_key(key.id).revoked_at is not None  # idempotent
    assert store.user_for_api_key(secret) is None
    with pytest.raises(NotFound):
        store.revoke_api_key("000000000000")


def test_ownership(store: WarmStore):
    a = store.create_user("owner1", "trader")
    store.set_owner("backtest", 7, a.id)
    assert store.owner_of("backtest", 7) == a.id and store.owner_of("backtest", 8) is None
    assert store.owned_ids("backtest", a.id) == ["7"]


def test_users_cli(qp_home):
    runner = CliRunner()
    out = runner.invoke(
        app, ["users", "create", "carol", "--role", "developer", "--password-stdin"], input="pw-123456\n"
    )
    assert out.exit_code == 0, out.output
    again = runner.invoke(app, ["users", "create", "carol", "--role", "developer"])
    assert again.exit_code == 2 and "already exists" in again.output and "Traceback" not in again.output
    bad = runner.invoke(app, ["users", "create", "dave", "--role", "root"])
    assert bad.exit_code == 2 and "role must be one of" in bad.output
    created = runner.invoke(app, ["users", "keys", "create", "carol"])
    assert created.exit_code == 0
    key = created.output.strip().splitlines()[-1]
    assert key.startswith("qp_")
    listing = runner.invoke(app, ["users", "list"])
    assert listing.exit_code == 0 and "carol" in listing.output and "developer" in listing.output
    key_id = key.split("_")[1]
    assert runner.invoke(app, ["users", "keys", "revoke", key_id]).exit_code == 0
    assert runner.invoke(app, ["users", "keys", "revoke", "ffffffffffff"]).exit_code == 1
    with WarmStore(f"sqlite:///{qp_home / 'warehouse.sqlite'}") as store:
        assert store.user_for_api_key(key) is None
        assert store.authenticate("carol", "pw-123456").role == "developer"
