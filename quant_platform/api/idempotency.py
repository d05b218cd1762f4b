"""`Idempotency-Key` on POSTs: the same key and body within 24 hours replays the first response
(status and body, with `Idempotent-Replayed: true`); the same key with another body is CONFLICT.

Responses are stored in the warm tier per (user, key), so they survive a restart of the server. The
key is claimed before the request runs, so concurrent requests with one key run it once (the others
get CONFLICT "still in progress"). Only successful responses are stored: a request that failed
releases its key and can be retried with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response

from quant_platform.api.auth import Principal
from quant_platform.api.errors import conflict, invalid
from quant_platform.storage.warm import body_hash

HEADER = "Idempotency-Key"
MAX_KEY = 255


def respond(
    request: Request,
    principal: Principal,
    key: str | None,
    body: Any,
    make: Callable[[], Any],
    status: int = 201,
) -> Response:
    """Run `make` once per (user, key, body) and answer with its result as JSON (204: no body)."""
    if key is not None and (not key.strip() or len(key) > MAX_KEY or key != key.strip()):
        raise invalid(f"{HEADER} must be 1..{MAX_KEY} characters without edge whitespace")
    warm = request.app.state.qp.warm
    digest = body_hash({"method": request.method, "path": request.url.path, "body": jsonable_encoder(body)})
    if key is None:
        return _response(status, jsonable_encoder(make()))
    first = warm.reserve_idempotency_key(principal.id, key, digest)
    if first is not None:
        if first.request_hash == digest and first.status_code == 0:
            raise conflict(
                f"a request with {HEADER} {key!r} is still in progress; retry shortly",
                {"idempotency_key": key},
            )
        return _replay(first.request_hash, digest, first.status_code, first.body, key)
    try:
        content = jsonable_encoder(make())
    except BaseException:
        warm.release_idempotency_key(principal.id, key)
        raise
    warm.complete_idempotency_key(principal.id, key, status, content)
    return _response(status, content)


def _replay(stored_hash: str, digest: str, status: int, content: Any, key: str) -> Response:
    if stored_hash != digest:
        raise conflict(
            f"{HEADER} {key!r} was already used with a different request",
            {"idempotency_key": key},
        )
    response = _response(status, content)
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _response(status: int, content: Any) -> Response:
    if status == 204:
        return Response(status_code=204)
    return JSONResponse(content, status_code=status)
