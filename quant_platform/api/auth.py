"""Authentication (access tokens and API keys, both `Authorization: Bearer ...`) and permissions.

- `POST /api/v1/auth/token` trades username + password for an HS256 JWT that lives
  `QP_API_TOKEN_MINUTES`; its signing key is `QP_API_SECRET` (required in prod), or locally a random
  key generated once and kept in `$QP_HOME/api_secret` (mode 0600).
- An API key (`qp_<id>_<secret>`, from `quant-platform users keys create`) is looked up by id and
  compared with the stored sha256 of its secret.

Every request re-reads the user, so a deactivated user or a revoked key stops working at once, and
the role (and with it the permissions of `core.identity.ROLE_PERMISSIONS`) is always the current one.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from quant_platform.api.errors import forbidden, unauthorized
from quant_platform.core.identity import ADMIN, API_KEY_PREFIX, has_permission
from quant_platform.settings import Settings, SettingsError
from quant_platform.storage.warm import User

ALGORITHM = "HS256"
SECRET_FILE = "api_secret"

bearer = HTTPBearer(auto_error=False, description="An access token (POST /api/v1/auth/token) or an API key")


def signing_secret(current: Settings) -> str:
    """QP_API_SECRET, or the local deployment's generated key under QP_HOME."""
    if current.api_secret:
        return current.api_secret
    if current.deployment == "prod":
        raise SettingsError("QP_DEPLOYMENT=prod needs QP_API_SECRET for the HTTP API")
    path = Path(current.home) / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()


def issue_token(user: User, secret: str, minutes: float) -> tuple[str, int]:
    now = dt.datetime.now(dt.UTC)
    expires = int(minutes * 60)
    claims = {
        "sub": str(user.id),
        "name": user.username,
        "iat": now,
        "exp": now + dt.timedelta(seconds=expires),
        "typ": "access",
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM), expires


def token_user_id(token: str, secret: str) -> int | None:
    """The user id of a valid, unexpired access token; None otherwise."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]})
        return int(claims["sub"]) if claims.get("typ") == "access" else None
    except (jwt.PyJWTError, ValueError, TypeError):
        return None


@dataclass(frozen=True)
class Principal:
    user: User

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def is_admin(self) -> bool:
        return self.user.role == ADMIN

    def can(self, permission: str) -> bool:
        return has_permission(self.user.role, permission)


def resolve(request: Request, token: str) -> User | None:
    state = request.app.state.qp
    if token.startswith(API_KEY_PREFIX):
        return state.warm.user_for_api_key(token)
    user_id = token_user_id(token, state.secret)
    return state.warm.active_user(user_id) if user_id is not None else None


def current_user(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise unauthorized("missing credentials: send Authorization: Bearer <token or API key>")
    user = resolve(request, credentials.credentials)
    if user is None:
        raise unauthorized("invalid, expired or revoked credentials")
    return Principal(user)


def requires(permission: str):
    """A dependency: the current user, who must hold `permission` (FORBIDDEN otherwise)."""

    def check(principal: Principal = Depends(current_user)) -> Principal:
        if not principal.can(permission):
            raise forbidden(f"role {principal.user.role!r} lacks permission {permission!r}")
        return principal

    return check
