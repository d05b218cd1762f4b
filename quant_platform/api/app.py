"""The app factory: `create_app(settings)` -> a FastAPI app serving /api/v1, /healthz, /openapi.json, /docs.

Middlewares, outermost first:
- `RateLimit`: per-user limits and the X-RateLimit-* headers on every response (`ratelimit.py`);
- `CatchAll`: an unexpected exception becomes INTERNAL_ERROR (no traceback in the response or the log);
- `BodyLimit`: request bodies above `MAX_BODY_BYTES` are refused with 413 INVALID_INPUT.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quant_platform import __version__
from quant_platform.api import errors
from quant_platform.api.auth import signing_secret, token_user_id
from quant_platform.api.ratelimit import RateLimiter, RateState
from quant_platform.api.routers import (
    auth,
    backtests,
    data,
    health,
    metrics,
    runs,
    share,
    strategies,
    users,
)
from quant_platform.api.state import ApiState
from quant_platform.core.identity import API_KEY_PREFIX
from quant_platform.settings import Settings
from quant_platform.storage.warm import WarmStore

log = logging.getLogger("quant_platform.api")

PREFIX = "/api/v1"
MAX_BODY_BYTES = 1 << 20  # 1 MiB: far above any legitimate request


def create_app(current: Settings) -> FastAPI:
    """The API over the stores of `current` (see `quant_platform.settings`); migrates the warm tier."""
    warm = WarmStore(current.stores.warehouse_url)
    warm.migrate()
    st = ApiState(
        settings=current,
        warm=warm,
        limiter=RateLimiter(current.api_rate_limit, current.stores.redis_url),
        secret=signing_secret(current),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        st.close()

    app = FastAPI(
        title="quant-platform API",
        version=__version__,
        description="Backtests run in Dagster, market data, strategies. Errors: "
        '`{"error": {"code", "message", "details"}}`. Auth: `Authorization: Bearer <token or API key>`.',
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.qp = st
    errors.install(app)
    for router in (
        auth.router,
        backtests.router,
        backtests.grid_router,
        share.router,  # before runs.router: /artifacts/report is not one of its {artifact}s
        share.shared_router,
        runs.router,
        data.router,
        strategies.router,
        users.router,
    ):
        app.include_router(router, prefix=PREFIX, responses=errors.ERROR_RESPONSES)
    app.include_router(health.router, responses=errors.ERROR_RESPONSES)
    app.include_router(metrics.router)  # /metrics: pipeline series for Prometheus (ops/metrics.py)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(CatchAll)
    app.add_middleware(RateLimit, state=st)
    return app


async def _send_json(send: Send, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
    raw = json.dumps(body).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    head += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": raw})


def _error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message, "details": None}}


class CatchAll:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:  # noqa: BLE001 - the one place unexpected errors end
            ref = uuid.uuid4().hex[:12]
            log.error("internal error %s on %s: %s", ref, scope.get("path", "?"), type(exc).__name__)
            if not started:
                await _send_json(
                    send, 500, _error(errors.INTERNAL_ERROR, f"internal error (reference {ref})")
                )


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        too_large = f"request body is larger than {self.max_bytes:,} bytes"
        try:
            declared = int(length) if length is not None else 0
        except ValueError:
            declared = self.max_bytes + 1
        if declared > self.max_bytes:
            await _send_json(send, 413, _error(errors.INVALID_INPUT, too_large), {"connection": "close"})
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise StarletteHTTPException(413, too_large)
            return message

        await self.app(scope, counted, send)


class RateLimit:
    """Buckets: the user behind a valid token or API key, else the client address."""

    def __init__(self, app: ASGIApp, state: ApiState) -> None:
        self.app, self.state = app, state
        self._key_users: dict[str, int | None] = {}

    def _bucket(self, scope: Scope) -> str:
        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        user_id = None
        if scheme.lower() == "bearer" and token:
            if token.startswith(API_KEY_PREFIX):
                digest = hashlib.sha256(token.encode()).hexdigest()
                if digest not in self._key_users:
                    user = self.state.warm.user_for_api_key(token)
                    if len(self._key_users) > 10_000:
                        self._key_users.clear()
                    self._key_users[digest] = user.id if user is not None else None
                user_id = self._key_users[digest]
            else:
                user_id = token_user_id(token, self.state.secret)
        if user_id is not None:
            return f"user:{user_id}"
        client = scope.get("client") or ("?", 0)
        return f"addr:{client[0]}"

    def _hit(self, scope: Scope) -> RateState | None:
        try:
            bucket = self._bucket(scope)
        except Exception as exc:  # noqa: BLE001 - e.g. the warm store is down: auth will say so
            log.warning("rate-limit bucket unknown: %s", type(exc).__name__)
            client = scope.get("client") or ("?", 0)
            bucket = f"addr:{client[0]}"
        return self.state.limiter.hit(bucket)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rate = await run_in_threadpool(self._hit, scope)
        headers = rate.headers() if rate is not None else {}
        if rate is not None and not rate.allowed:
            message = f"rate limit of {self.state.settings.api_rate_limit} exceeded; retry after the reset"
            await _send_json(send, 429, _error(errors.RATE_LIMITED, message), headers)
            return
        extra = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)
