"""The one error shape every HTTP answer of the platform has, and the one mapping from errors onto it.

`{"error": {code, message, details, path, requestId, timestamp, type}}`, where `type` names the category and fixes
the status (VALIDATION 400, AUTHENTICATION 401, AUTHORIZATION 403, NOT_FOUND 404, CONFLICT 409, RATE_LIMIT 429,
EXTERNAL_SERVICE 502, INTERNAL 500) and `code` says precisely what happened. A few HTTP-only conditions keep their
own status inside the VALIDATION or NOT_FOUND category (405, 413, 415). Domain errors and peer gRPC statuses are
converted here, once; the message of an unexpected error is generic: a client never sees a stack trace.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import grpc
from pydantic import BaseModel, ConfigDict, Field

from services.kit.auth.errors import TokenRejected
from services.kit.errors import InvalidArgument, VentaError
from services.kit.grpc.client import PeerUnavailable, RemoteError
from services.kit.logging import request_id_var


class ErrorType(StrEnum):
    VALIDATION = "VALIDATION"
    AUTHENTICATION = "AUTHENTICATION"
    AUTHORIZATION = "AUTHORIZATION"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    RATE_LIMIT = "RATE_LIMIT"
    EXTERNAL_SERVICE = "EXTERNAL_SERVICE"
    INTERNAL = "INTERNAL"


STATUS_OF = {
    ErrorType.VALIDATION: 400,
    ErrorType.AUTHENTICATION: 401,
    ErrorType.AUTHORIZATION: 403,
    ErrorType.NOT_FOUND: 404,
    ErrorType.CONFLICT: 409,
    ErrorType.RATE_LIMIT: 429,
    ErrorType.EXTERNAL_SERVICE: 502,
    ErrorType.INTERNAL: 500,
}

# a peer's answer (RemoteError) -> category; anything not listed is INTERNAL
_REMOTE_TYPES = {
    grpc.StatusCode.INVALID_ARGUMENT: ErrorType.VALIDATION,
    grpc.StatusCode.OUT_OF_RANGE: ErrorType.VALIDATION,
    grpc.StatusCode.UNAUTHENTICATED: ErrorType.AUTHENTICATION,
    grpc.StatusCode.PERMISSION_DENIED: ErrorType.AUTHORIZATION,
    grpc.StatusCode.NOT_FOUND: ErrorType.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS: ErrorType.CONFLICT,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ErrorType.RATE_LIMIT,
}
_PEER_FAILURE_TYPES = {
    grpc.StatusCode.UNAVAILABLE: ErrorType.EXTERNAL_SERVICE,
    grpc.StatusCode.DEADLINE_EXCEEDED: ErrorType.EXTERNAL_SERVICE,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ErrorType.RATE_LIMIT,
}


class ErrorDetail(BaseModel):
    """One problem with the request; `field` is the request field at fault (camelCase, dotted), when known."""

    field: str | None = None
    message: str


class ErrorBody(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    type: ErrorType
    code: str = Field(description="What happened, precisely: e.g. REQUEST_VALIDATION, NOT_FOUND, TOKEN_EXPIRED")
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)
    path: str
    request_id: str | None = Field(default=None, alias="requestId")
    timestamp: str = Field(description="ISO 8601, UTC")


class ErrorEnvelope(BaseModel):
    """Every error answer of the API, whatever its status."""

    error: ErrorBody


class ApiError(Exception):
    """An error an HTTP handler means to send as is (status from `type`, unless `status` overrides it)."""

    def __init__(
        self,
        type_: ErrorType,
        code: str,
        message: str,
        *,
        details: list[ErrorDetail] | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.type = type_
        self.code = code
        self.message = message
        self.details = details or []
        self.status = status or STATUS_OF[type_]
        self.headers = headers or {}


def _camel(field: str) -> str:
    """`image_url` -> `imageUrl`, per dotted part: peers name proto fields, clients know the JSON names."""
    parts = []
    for part in field.split("."):
        head, *rest = part.split("_")
        parts.append(head + "".join(word[:1].upper() + word[1:] for word in rest))
    return ".".join(parts)


def from_exception(exc: BaseException, *, field_names: dict[str, str] | None = None) -> ApiError:
    """The ApiError for any exception a handler let through; unknown exceptions become a generic INTERNAL."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, TokenRejected):
        challenge = f'Bearer error="invalid_token", error_description="{exc.reason}"'
        return ApiError(ErrorType.AUTHENTICATION, exc.reason, exc.message, headers={"WWW-Authenticate": challenge})
    if isinstance(exc, PeerUnavailable):
        type_ = _PEER_FAILURE_TYPES.get(exc.peer_code, ErrorType.INTERNAL)
        if type_ is ErrorType.INTERNAL:
            return ApiError(type_, "INTERNAL_ERROR", "internal error")
        code = "CIRCUIT_OPEN" if exc.breaker_open else exc.peer_code.name
        return ApiError(type_, code, exc.message)
    if isinstance(exc, (RemoteError, InvalidArgument)):
        field = exc.field
        status = exc.code
        type_ = _REMOTE_TYPES.get(status, ErrorType.INTERNAL)
        if type_ is ErrorType.INTERNAL:
            return ApiError(type_, "INTERNAL_ERROR", "internal error")
        details = []
        if field:
            name = (field_names or {}).get(field, _camel(field))
            message = exc.message.removeprefix(f"{field}: ")
            details = [ErrorDetail(field=name, message=message)]
        message = exc.message if not field else f"{details[0].field}: {details[0].message}"
        return ApiError(type_, status.name, message, details=details)
    if isinstance(exc, VentaError):
        type_ = _PEER_FAILURE_TYPES.get(exc.code) or _REMOTE_TYPES.get(exc.code, ErrorType.INTERNAL)
        if type_ is ErrorType.INTERNAL:
            return ApiError(type_, "INTERNAL_ERROR", "internal error")
        return ApiError(type_, exc.code.name, exc.message)
    return ApiError(ErrorType.INTERNAL, "INTERNAL_ERROR", "internal error")


def envelope(error: ApiError, *, path: str) -> dict[str, Any]:
    """The JSON body for `error`, stamped with the request id and the time."""
    body = ErrorBody(
        type=error.type,
        code=error.code,
        message=error.message,
        details=error.details,
        path=path,
        requestId=request_id_var.get(),
        timestamp=datetime.now(UTC).isoformat(timespec="milliseconds"),
    )
    return {"error": body.model_dump(mode="json", by_alias=True)}
