"""FastAPI exception handlers that turn every error into the envelope (`services.kit.http.envelope`).

Installed by each HTTP service on its app, so a validation error, an unknown route, a 405, a domain error raised in
a handler and a peer's gRPC status all leave in the same shape. Errors nobody expected are caught one level up, by
`RequestContextMiddleware`, which logs them and answers the same generic INTERNAL envelope.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from services.kit.errors import VentaError
from services.kit.http.envelope import ApiError, ErrorDetail, ErrorType, envelope, from_exception
from services.kit.http.middleware import BodyTooLarge

log = logging.getLogger("venta.http")

# HTTP-level refusals that have no domain error behind them: status -> (category, code)
_HTTP_ERRORS = {
    400: (ErrorType.VALIDATION, "BAD_REQUEST"),
    401: (ErrorType.AUTHENTICATION, "UNAUTHENTICATED"),
    403: (ErrorType.AUTHORIZATION, "FORBIDDEN"),
    404: (ErrorType.NOT_FOUND, "ROUTE_NOT_FOUND"),
    405: (ErrorType.VALIDATION, "METHOD_NOT_ALLOWED"),
    409: (ErrorType.CONFLICT, "CONFLICT"),
    413: (ErrorType.VALIDATION, "PAYLOAD_TOO_LARGE"),
    415: (ErrorType.VALIDATION, "UNSUPPORTED_MEDIA_TYPE"),
    429: (ErrorType.RATE_LIMIT, "RATE_LIMITED"),
}


def error_response(error: ApiError, path: str) -> JSONResponse:
    return JSONResponse(envelope(error, path=path), status_code=error.status, headers=error.headers or None)


def render_error(scope: Scope, exc: Exception) -> JSONResponse:
    """The answer to an error raised outside the routed app (middleware) or by nobody's handler."""
    if isinstance(exc, BodyTooLarge):
        error = ApiError(ErrorType.VALIDATION, "PAYLOAD_TOO_LARGE", str(exc), status=413)
    else:
        error = from_exception(exc)
    return error_response(error, str(scope.get("path", "")))


def _field(loc: tuple[Any, ...] | list[Any]) -> str | None:
    parts = [str(part) for part in loc[1:]] if loc and loc[0] in {"body", "query", "path", "header"} else []
    return ".".join(parts) or None


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc, request.url.path)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    type_, code = _HTTP_ERRORS.get(exc.status_code, (ErrorType.INTERNAL, "INTERNAL_ERROR"))
    if exc.status_code == 404:
        message = f"no route for {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    elif type_ is ErrorType.INTERNAL:
        message = "internal error"
    else:
        message = str(exc.detail)
    status = exc.status_code if exc.status_code in _HTTP_ERRORS else 500
    error = ApiError(type_, code, message, status=status, headers=dict(exc.headers or {}))
    return error_response(error, request.url.path)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = []
    for problem in exc.errors()[:20]:
        message = str(problem.get("msg", "invalid"))
        details.append(ErrorDetail(field=_field(problem.get("loc", ())), message=message.removeprefix("Value error, ")))
    first = details[0] if details else ErrorDetail(message="invalid request")
    summary = f"{first.field}: {first.message}" if first.field else first.message
    error = ApiError(ErrorType.VALIDATION, "REQUEST_VALIDATION", summary, details=details)
    return error_response(error, request.url.path)


def install_error_handlers(app: FastAPI, *, field_names: Mapping[str, str] | None = None) -> None:
    """Every error the app can raise -> the envelope; `field_names` renames peer fields (proto -> JSON)."""
    names = dict(field_names or {})

    async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
        error = from_exception(exc, field_names=names)
        if error.type is ErrorType.INTERNAL:
            # the client sees "internal error"; the log says which peer answered what
            log.error("%s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        return error_response(error, request.url.path)

    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(VentaError, _domain_error)
