"""One error model for every response that is not a success:

    {"error": {"code": "NOT_FOUND", "message": "backtest 7 does not exist", "details": {...}}}

Codes: INVALID_INPUT (400 malformed JSON, 413 body too large, 422 invalid fields), UNAUTHORIZED
(401), FORBIDDEN (403), NOT_FOUND (404, also for what belongs to someone else and unknown routes),
METHOD_NOT_ALLOWED is reported as INVALID_INPUT (405), CONFLICT (409), RATE_LIMITED (429),
UPSTREAM_ERROR (502/503: a store is down or held, with Retry-After), INTERNAL_ERROR (500).

Nothing else leaves the API: no stack trace, no exception text of an unexpected error, no input
echoed back from validation errors. Unexpected errors are logged as their type and the request id
only (their text may hold a DSN or a strategy's source).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("quant_platform.api")

INVALID_INPUT = "INVALID_INPUT"
UNAUTHORIZED = "UNAUTHORIZED"
FORBIDDEN = "FORBIDDEN"
NOT_FOUND = "NOT_FOUND"
CONFLICT = "CONFLICT"
RATE_LIMITED = "RATE_LIMITED"
UPSTREAM_ERROR = "UPSTREAM_ERROR"
INTERNAL_ERROR = "INTERNAL_ERROR"

_BY_STATUS = {
    400: INVALID_INPUT,
    401: UNAUTHORIZED,
    403: FORBIDDEN,
    404: NOT_FOUND,
    405: INVALID_INPUT,
    409: CONFLICT,
    413: INVALID_INPUT,
    415: INVALID_INPUT,
    422: INVALID_INPUT,
    429: RATE_LIMITED,
    502: UPSTREAM_ERROR,
    503: UPSTREAM_ERROR,
}


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any] | None = None


class ErrorBody(BaseModel):
    """Every error response."""

    error: ErrorDetail


# Documented on every route, so clients (and Schemathesis) know each error's shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": code}
    for status, code in {
        400: "INVALID_INPUT: malformed JSON or a bad value",
        401: "UNAUTHORIZED",
        403: "FORBIDDEN",
        404: "NOT_FOUND",
        405: "INVALID_INPUT: method not allowed",
        409: "CONFLICT",
        413: "INVALID_INPUT: request body too large",
        422: "INVALID_INPUT: invalid fields",
        429: "RATE_LIMITED",
        500: "INTERNAL_ERROR",
        503: "UPSTREAM_ERROR: a store is unavailable or busy",
    }.items()
}


class ApiError(Exception):
    """An error the API reports on purpose."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.headers = details, headers or {}


def invalid(message: str, details: dict[str, Any] | None = None) -> ApiError:
    return ApiError(422, INVALID_INPUT, message, details)


def not_found(message: str) -> ApiError:
    return ApiError(404, NOT_FOUND, message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, FORBIDDEN, message)


def conflict(message: str, details: dict[str, Any] | None = None) -> ApiError:
    return ApiError(409, CONFLICT, message, details)


def unauthorized(message: str = "missing or invalid credentials") -> ApiError:
    return ApiError(401, UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"})


def upstream(message: str, retry_after: int = 5) -> ApiError:
    return ApiError(503, UPSTREAM_ERROR, message, headers={"Retry-After": str(retry_after)})


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details}}
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_details(exc: RequestValidationError) -> tuple[int, str, dict[str, Any]]:
    """400 for a body that is not JSON, 422 otherwise; the offending input is never echoed back."""
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "request body is not valid JSON", {}
    fields = [
        {"loc": [str(p) for p in e.get("loc", ())], "message": str(e.get("msg", "")), "type": e.get("type")}
        for e in errors[:20]
    ]
    return (
        422,
        "invalid request: " + "; ".join(f"{'.'.join(f['loc'])}: {f['message']}" for f in fields[:3]),
        {"fields": fields},
    )


def install(app: FastAPI) -> None:
    """Map every exception to the error model."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message, details = _validation_details(exc)
        return error_response(status, INVALID_INPUT, message[:500], details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _BY_STATUS.get(exc.status_code, INTERNAL_ERROR if exc.status_code >= 500 else INVALID_INPUT)
        message = {404: "no such route", 405: "method not allowed"}.get(
            exc.status_code, str(exc.detail)[:500]
        )
        return error_response(exc.status_code, code, message, None, getattr(exc, "headers", None))

    # Unexpected exceptions are turned into INTERNAL_ERROR by `app.CatchAll`, before Starlette's
    # ServerErrorMiddleware could log their traceback.


def internal_error(request: Request | None, exc: BaseException) -> JSONResponse:
    ref = uuid.uuid4().hex[:12]
    path = request.url.path if request is not None else "?"
    log.error("internal error %s on %s: %s", ref, path, type(exc).__name__)
    return error_response(500, INTERNAL_ERROR, f"internal error (reference {ref})", None)
