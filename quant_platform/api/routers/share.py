"""A run's HTML report (`GET /api/v1/runs/{run_id}/artifacts/report`) and read-only share links to it.

`POST /api/v1/runs/{run_id}/share` (the run's owner or an admin) returns a signed URL that expires;
`GET /api/v1/shared/{token}` serves the report to anyone holding it, without credentials;
`GET /api/v1/runs/{run_id}/share` lists them and `DELETE /api/v1/runs/{run_id}/share/{share_id}`
revokes one. A tampered, expired, revoked or unknown link is NOT_FOUND, with one message for all of
them, so a guesser learns nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Body, Depends, Header, Path, Request
from fastapi.responses import HTMLResponse, Response

from quant_platform.api import schemas
from quant_platform.api.auth import Principal, requires
from quant_platform.api.errors import conflict, not_found
from quant_platform.api.idempotency import HEADER, respond
from quant_platform.api.routers.common import owned_run, state
from quant_platform.api.state import ApiState
from quant_platform.core.identity import BACKTEST_READ, BACKTEST_SHARE
from quant_platform.research import share

router = APIRouter(prefix="/runs", tags=["runs"])
shared_router = APIRouter(prefix="/shared", tags=["runs"])

RunId = Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
IdemKey = Header(None, alias=HEADER, max_length=255, description="Replays the first response for 24 h")
LINK_GONE = "this share link does not exist, has expired or was revoked"
# Documented per status: errors stay JSON (the error model), only the page itself is HTML.
HTML: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {"schema": {"type": "string"}}}, "description": "the report"}
}
# The report needs nothing from outside itself: no network, no framing, no referrer carrying a token.
REPORT_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
        "font-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-store",
}


def _report(st: ApiState, run_id: str, missing: str) -> HTMLResponse:
    from quant_platform.research.report import render_report
    from quant_platform.research.runs import UnknownRun, load_run

    with st.cold() as cold:
        try:
            result = load_run(st.warm, cold, run_id)
        except UnknownRun:
            raise not_found(missing) from None
    headers = {**REPORT_HEADERS, "Content-Disposition": f'inline; filename="{run_id}-report.html"'}
    return HTMLResponse(render_report(result), headers=headers)


@router.get("/{run_id}/artifacts/report", responses=HTML)
def report(
    request: Request, run_id: str = RunId, principal: Principal = Depends(requires(BACKTEST_READ))
) -> HTMLResponse:
    """The run's report: one self-contained HTML page (interactive charts, stats, parameters, trades)."""
    st = state(request)
    run = owned_run(st, principal, run_id)
    if str(run.status) != "succeeded":
        raise not_found(f"run {run_id!r} has no artifacts (it is {run.status})")
    return _report(st, run.id, f"run {run_id!r} has no report")


@router.post("/{run_id}/share", status_code=201, response_model=schemas.ShareCreated)
def create_share(
    request: Request,
    run_id: str = RunId,
    body: schemas.ShareCreate | None = Body(None),
    principal: Principal = Depends(requires(BACKTEST_SHARE)),
    idempotency_key: str | None = IdemKey,
) -> Response:
    """A read-only link to the run's report that anyone holding it can open without credentials,
    until it expires (`expires_in_days`, 1-30, default 7) or is revoked."""
    st = state(request)
    days = (body or schemas.ShareCreate()).expires_in_days

    def make() -> dict[str, Any]:
        run = owned_run(st, principal, run_id)
        if str(run.status) != "succeeded":
            raise conflict(f"run {run_id!r} is {run.status}: only a succeeded run has a report to share")
        expires_at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=days)
        link = st.warm.create_share_link(share.new_share_id(), run.id, principal.id, expires_at)
        token = share.sign(link.id, link.expires_at, st.secret)
        url = request.app.url_path_for("shared_report", token=token)
        return {"share_id": link.id, "url": str(url), "expires_at": link.expires_at}

    return respond(
        request, principal, idempotency_key, {"run_id": run_id, "expires_in_days": days}, make, 201
    )


@router.get("/{run_id}/share", response_model=list[schemas.ShareInfo])
def list_shares(
    request: Request, run_id: str = RunId, principal: Principal = Depends(requires(BACKTEST_SHARE))
) -> list[schemas.ShareInfo]:
    """The run's share links, oldest first, with their state (active, expired or revoked)."""
    st = state(request)
    run = owned_run(st, principal, run_id)
    now = dt.datetime.now(dt.UTC)
    return [
        schemas.ShareInfo(
            share_id=link.id,
            url=str(
                request.app.url_path_for(
                    "shared_report", token=share.sign(link.id, link.expires_at, st.secret)
                )
            ),
            created_at=link.created_at,
            expires_at=link.expires_at,
            revoked_at=link.revoked_at,
            state="revoked" if link.revoked_at else ("active" if link.valid_at(now) else "expired"),
        )
        for link in st.warm.list_share_links(run.id)
    ]


@router.delete("/{run_id}/share/{share_id}", status_code=204, response_class=Response)
def revoke_share(
    request: Request,
    run_id: str = RunId,
    share_id: str = Path(pattern=r"^[0-9a-f]{32}$"),
    principal: Principal = Depends(requires(BACKTEST_SHARE)),
) -> Response:
    """Revoke a share link of the run: its URL stops working at once. Revoking twice is fine (204)."""
    st = state(request)
    run = owned_run(st, principal, run_id)
    link = st.warm.get_share_link(share_id)
    if link is None or link.run_id != run.id:
        raise not_found(f"share link {share_id!r} of run {run_id!r} does not exist")
    st.warm.revoke_share_link(share_id)
    return Response(status_code=204)


@shared_router.get("/{token}", responses=HTML, name="shared_report")
def shared_report(request: Request, token: str = Path()) -> HTMLResponse:
    """The report behind a share link, read-only and without credentials."""
    st = state(request)
    verified = share.verify(token, st.secret)
    if verified is None:
        raise not_found(LINK_GONE)
    share_id, expires = verified
    link = st.warm.get_share_link(share_id)
    now = dt.datetime.now(dt.UTC)
    if link is None or not link.valid_at(now) or int(link.expires_at.timestamp()) != expires:
        raise not_found(LINK_GONE)
    return _report(st, link.run_id, LINK_GONE)
