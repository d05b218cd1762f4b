"""GET /api/v1/users (user:manage): the accounts of the API, without secrets. Users and keys are
created with `quant-platform users ...`."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from quant_platform.api.auth import Principal, requires
from quant_platform.api.routers.common import state
from quant_platform.core.identity import USER_MANAGE

router = APIRouter(prefix="/users", tags=["users"])


class UserView(BaseModel):
    id: int
    username: str
    email: str | None
    role: str
    status: str
    failed_logins: int
    locked_until: dt.datetime | None
    created_at: dt.datetime


@router.get("", response_model=list[UserView])
def list_users(request: Request, principal: Principal = Depends(requires(USER_MANAGE))) -> list[UserView]:
    """Every user with role, status and failed logins."""
    return [
        UserView(
            id=u.id,
            username=u.username,
            email=u.email,
            role=u.role,
            status=u.status,
            failed_logins=u.failed_logins,
            locked_until=u.locked_until,
            created_at=u.created_at,
        )
        for u in state(request).warm.list_users()
    ]
