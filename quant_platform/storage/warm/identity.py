"""WarmStore section: users, API keys and ownership of what users create (backtests, grid requests).

Passwords are argon2 hashes and API keys sha256 digests of their secret (`core/identity.py`); the
records handed out never carry either. A login is verified outside any transaction (argon2 takes tens
of milliseconds) and its outcome recorded in a short one: failed logins count up and, at
`MAX_FAILED_LOGINS`, lock the account for `LOCK_MINUTES`.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.orm import Session

from quant_platform.core import identity as ident
from quant_platform.storage import warm_models as m
from quant_platform.storage.warm.errors import AlreadyExists, NotFound
from quant_platform.storage.warm.records import ApiKey, User
from quant_platform.storage.warm.section import StoreSection

OWNED_KINDS = ("backtest", "grid")


def _user(r: m.UserRow) -> User:
    return User(r.id, r.username, r.email, r.role, r.status, r.failed_logins, r.locked_until, r.created_at)


def _key(r: m.ApiKeyRow, username: str) -> ApiKey:
    return ApiKey(r.id, username, r.name, r.created_at, r.revoked_at)


def _user_row(s: Session, username: str, *, lock: bool = False) -> m.UserRow:
    q = sa.select(m.UserRow).where(m.UserRow.username == username)
    row = s.scalars(q.with_for_update() if lock else q).one_or_none()
    if row is None:
        raise NotFound(f"user {username!r} does not exist")
    return row


def _unlock_if_due(row: m.UserRow, now: dt.datetime) -> None:
    if row.status == "locked" and row.locked_until is not None and row.locked_until <= now:
        row.status, row.locked_until, row.failed_logins = "active", None, 0


class IdentityMixin(StoreSection):
    """Users (create, list, status, login bookkeeping), API keys (create, revoke, resolve), ownership."""

    # ------------------------------------------------------------------------------------- users

    def create_user(
        self, username: str, role: str, *, email: str | None = None, password: str | None = None
    ) -> User:
        ident.check_username(username)
        ident.check_role(role)
        ident.check_email(email)
        digest = ident.hash_password(password) if password is not None else None

        def create(s: Session) -> User:
            row = m.UserRow(
                username=username,
                email=email,
                password_hash=digest,
                role=role,
                status="active",
                failed_logins=0,
                created_at=m.utcnow(),
            )
            s.add(row)
            s.flush()
            return _user(row)

        try:
            return self._run(create)
        except exc.IntegrityError:
            raise AlreadyExists(f"user {username!r} or email {email!r} already exists") from None

    def get_user(self, username: str) -> User:
        return self._run(lambda s: _user(_user_row(s, username)), write=False)

    def get_user_by_id(self, user_id: int) -> User | None:
        def get(s: Session) -> User | None:
            row = s.get(m.UserRow, int(user_id))
            return None if row is None else _user(row)

        return self._run(get, write=False)

    def list_users(self) -> list[User]:
        return self._run(
            lambda s: [_user(r) for r in s.scalars(sa.select(m.UserRow).order_by(m.UserRow.username))],
            write=False,
        )

    def set_user_status(self, username: str, status: str) -> User:
        if status not in ident.USER_STATUSES:
            raise ValueError(f"status must be one of {', '.join(ident.USER_STATUSES)}, got {status!r}")

        def upd(s: Session) -> User:
            row = _user_row(s, username, lock=True)
            row.status, row.locked_until = status, None
            if status == "active":
                row.failed_logins = 0
            s.flush()
            return _user(row)

        return self._run(upd)

    def authenticate(self, username: str, password: str) -> User | None:
        """The user if `password` is theirs and they may log in; None otherwise (a failure is counted).

        An account that is locked (until its lock expires), inactive or unknown never logs in, and
        every outcome costs one argon2 verification, so timing does not tell which one it was.
        """

        def read(s: Session) -> tuple[str | None, bool]:
            row = s.scalars(sa.select(m.UserRow).where(m.UserRow.username == username)).one_or_none()
            return (None, False) if row is None else (row.password_hash, True)

        stored, exists = self._run(read, write=False) if isinstance(username, str) else (None, False)
        ok = ident.verify_password(stored, password if isinstance(password, str) else "")
        if not exists:
            return None

        def record(s: Session) -> User | None:
            row = _user_row(s, username, lock=True)
            now = m.utcnow()
            _unlock_if_due(row, now)
            if row.status != "active":
                return None
            if ok and stored is not None:
                row.failed_logins = 0
                s.flush()
                return _user(row)
            row.failed_logins += 1
            if row.failed_logins >= ident.MAX_FAILED_LOGINS:
                row.status = "locked"
                row.locked_until = now + dt.timedelta(minutes=ident.LOCK_MINUTES)
            s.flush()
            return None

        return self._run(record)

    def active_user(self, user_id: int) -> User | None:
        """The user behind a token, if they may still act (active, or their lock has expired)."""
        user = self.get_user_by_id(user_id)
        if user is None:
            return None
        if user.status == "locked" and user.locked_until is not None and user.locked_until <= m.utcnow():
            return user
        return user if user.status == "active" else None

    # ---------------------------------------------------------------------------------- API keys

    def create_api_key(self, username: str, name: str = "") -> tuple[ApiKey, str]:
        """A new key for `username`: (its record, the key itself, shown this once)."""
        if not isinstance(name, str) or len(name) > 100:
            raise ValueError("key name must be at most 100 characters")
        key_id, key, digest = ident.new_api_key()

        def create(s: Session) -> ApiKey:
            user = _user_row(s, username)
            row = m.ApiKeyRow(
                id=key_id, user_id=user.id, secret_hash=digest, name=name, created_at=m.utcnow()
            )
            s.add(row)
            s.flush()
            return _key(row, username)

        return self._run(create), key

    def revoke_api_key(self, key_id: str) -> ApiKey:
        """Revoke a key by its id; revoking a revoked key changes nothing."""

        def revoke(s: Session) -> ApiKey:
            row = s.get(m.ApiKeyRow, str(key_id), with_for_update=True)
            if row is None:
                raise NotFound(f"API key {key_id!r} does not exist")
            if row.revoked_at is None:
                row.revoked_at = m.utcnow()
                s.flush()
            user = s.get(m.UserRow, row.user_id)
            return _key(row, user.username if user else "?")

        return self._run(revoke)

    def list_api_keys(self, username: str | None = None) -> list[ApiKey]:
        def lst(s: Session) -> list[ApiKey]:
            q = (
                sa.select(m.ApiKeyRow, m.UserRow.username)
                .join(m.UserRow, m.UserRow.id == m.ApiKeyRow.user_id)
                .order_by(m.ApiKeyRow.created_at)
            )
            if username is not None:
                q = q.where(m.UserRow.username == username)
            return [_key(row, name) for row, name in s.execute(q)]

        return self._run(lst, write=False)

    def user_for_api_key(self, key: str) -> User | None:
        """The active user owning `key`, None for a malformed, unknown or revoked key."""
        parsed = ident.parse_api_key(key)
        if parsed is None:
            return None
        key_id, secret = parsed

        def find(s: Session) -> tuple[int, str] | None:
            row = s.get(m.ApiKeyRow, key_id)
            if row is None or row.revoked_at is not None:
                return None
            return row.user_id, row.secret_hash

        found = self._run(find, write=False)
        if found is None or not ident.same_digest(found[1], ident.key_digest(secret)):
            return None
        return self.active_user(found[0])

    # --------------------------------------------------------------------------------- ownership

    def set_owner(self, kind: str, object_id: str | int, user_id: int) -> None:
        if kind not in OWNED_KINDS:
            raise ValueError(f"kind must be one of {OWNED_KINDS}, got {kind!r}")

        def put(s: Session) -> None:
            s.merge(m.OwnershipRow(kind=kind, object_id=str(object_id), user_id=int(user_id)))

        self._run(put)

    def owner_of(self, kind: str, object_id: str | int) -> int | None:
        return self._run(
            lambda s: s.scalar(
                sa.select(m.OwnershipRow.user_id).where(
                    m.OwnershipRow.kind == kind, m.OwnershipRow.object_id == str(object_id)
                )
            ),
            write=False,
        )

    def owned_ids(self, kind: str, user_id: int) -> list[str]:
        Own = m.OwnershipRow
        return self._run(
            lambda s: list(
                s.scalars(sa.select(Own.object_id).where(Own.kind == kind, Own.user_id == int(user_id)))
            ),
            write=False,
        )
