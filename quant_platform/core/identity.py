"""Who may do what: roles, permissions (`resource:action`), and the rules for names, passwords and keys.

`ROLE_PERMISSIONS` is the one table mapping roles to permissions: the HTTP API checks it, the CLI
validates roles against it, the warm tier's CHECK constraint lists `ROLES`. Plain Python: no Dagster,
no web framework; argon2 is imported inside the functions that hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

ADMIN, DEVELOPER, TRADER, VIEWER = "admin", "developer", "trader", "viewer"
ROLES = (ADMIN, DEVELOPER, TRADER, VIEWER)
USER_STATUSES = ("active", "inactive", "locked")

BACKTEST_SUBMIT = "backtest:submit"
BACKTEST_READ = "backtest:read"
BACKTEST_SHARE = "backtest:share"  # hand out (and revoke) read-only links to a run's report
STRATEGY_READ = "strategy:read"
STRATEGY_MANAGE = "strategy:manage"
DATA_READ = "data:read"
USER_MANAGE = "user:manage"
PERMISSIONS = (
    BACKTEST_SUBMIT,
    BACKTEST_READ,
    BACKTEST_SHARE,
    STRATEGY_READ,
    STRATEGY_MANAGE,
    DATA_READ,
    USER_MANAGE,
)

# The single source of which role holds which permission.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    ADMIN: frozenset(PERMISSIONS),
    DEVELOPER: frozenset(
        {BACKTEST_SUBMIT, BACKTEST_READ, BACKTEST_SHARE, STRATEGY_READ, STRATEGY_MANAGE, DATA_READ}
    ),
    TRADER: frozenset({BACKTEST_SUBMIT, BACKTEST_READ, BACKTEST_SHARE, STRATEGY_READ, DATA_READ}),
    VIEWER: frozenset({BACKTEST_READ, STRATEGY_READ, DATA_READ}),
}

# Repeated failed logins lock an account for a while.
MAX_FAILED_LOGINS = 5
LOCK_MINUTES = 15

API_KEY_PREFIX = "qp_"
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,49}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_KEY = re.compile(r"^qp_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")
MIN_PASSWORD = 8
MAX_PASSWORD = 256


def has_permission(role: str, permission: str) -> bool:
    return permission in ROLE_PERMISSIONS.get(role, frozenset())


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return role


def check_username(name: str) -> str:
    if not isinstance(name, str) or not _USERNAME.match(name):
        raise ValueError(
            "username must be 3-50 characters (letters, digits, '_', '.', '-'), "
            "starting with a letter or digit"
        )
    return name


def check_email(email: str | None) -> str | None:
    if email is None:
        return None
    if not isinstance(email, str) or len(email) > 255 or not _EMAIL.match(email):
        raise ValueError(f"not an email address: {email!r}")
    return email


def check_password(password: str) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValueError(f"password must be {MIN_PASSWORD}-{MAX_PASSWORD} characters")
    return password


def hash_password(password: str) -> str:
    from argon2 import PasswordHasher

    return PasswordHasher().hash(check_password(password))


def verify_password(stored: str | None, password: str) -> bool:
    """True if `password` matches the argon2 hash; a missing hash still costs one verification."""
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = PasswordHasher()
    try:
        return hasher.verify(stored or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False


_dummy: list[str] = []


def _dummy_hash() -> str:
    """A valid argon2 hash that matches no password: unknown users cost one verification too."""
    if not _dummy:
        from argon2 import PasswordHasher

        _dummy.append(PasswordHasher().hash(secrets.token_urlsafe(16)) + "x")
    return _dummy[0]


def new_api_key() -> tuple[str, str, str]:
    """(key id, the key shown once, sha256 of its secret to store)."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return key_id, f"{API_KEY_PREFIX}{key_id}_{secret}", key_digest(secret)


def key_digest(secret: str) -> str:
    """API keys carry 256 random bits: a plain sha256 is enough (argon2 is for guessable passwords)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_api_key(key: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, None otherwise."""
    match = _KEY.match(key or "")
    return (match.group(1), match.group(2)) if match else None


def same_digest(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
