"""POST /api/v1/auth/token (password -> access token) and GET /api/v1/auth/me."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from quant_platform.api import schemas
from quant_platform.api.auth import Principal, current_user, issue_token
from quant_platform.api.errors import unauthorized
from quant_platform.api.routers.common import state
from quant_platform.core.identity import ROLE_PERMISSIONS

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token", response_model=schemas.TokenResponse)
def token(body: schemas.TokenRequest, request: Request) -> schemas.TokenResponse:
    """An access token for username + password. Repeated failures lock the account for a while."""
    st = state(request)
    user = st.warm.authenticate(body.username, body.password)
    if user is None:
        raise unauthorized("invalid username or password, or the account is locked or inactive")
    access, expires = issue_token(user, st.secret, st.settings.api_token_minutes)
    return schemas.TokenResponse(access_token=access, expires_in=expires)


@router.get("/me", response_model=schemas.Me)
def me(principal: Principal = Depends(current_user)) -> schemas.Me:
    """Who the credentials belong to, and what they may do."""
    u = principal.user
    return schemas.Me(
        id=u.id, username=u.username, email=u.email, role=u.role, permissions=sorted(ROLE_PERMISSIONS[u.role])
    )
