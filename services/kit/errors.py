"""Domain errors shared by every service, and the one mapping from errors to gRPC status codes.

Services raise these (never grpc codes) in their domain code; the gRPC error interceptor converts them at the edge,
once. Infrastructure failures (a database or broker that does not answer) become UNAVAILABLE so that callers know a
retry may succeed; anything unexpected becomes INTERNAL with a generic message: a client never sees a stack trace.
"""

from __future__ import annotations

import asyncio

import grpc
from sqlalchemy import exc as sa_exc


class VentaError(Exception):
    """Base of every error a service means to send to its caller."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(VentaError):
    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class NotFound(VentaError):
    code = grpc.StatusCode.NOT_FOUND


class PermissionDenied(VentaError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(VentaError):
    code = grpc.StatusCode.UNAUTHENTICATED


class Unavailable(VentaError):
    """A dependency does not answer (database down, breaker open): the call may succeed later."""

    code = grpc.StatusCode.UNAVAILABLE


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError, asyncio.TimeoutError, OSError)):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and (exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError)):
        return True
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.TimeoutError, sa_exc.DisconnectionError)):
        return True
    cause = exc.__cause__ or exc.__context__
    # asyncpg's connection errors arrive wrapped by SQLAlchemy; follow the chain a few links.
    return cause is not None and cause is not exc and _is_unavailable_shallow(cause)


def _is_unavailable_shallow(exc: BaseException) -> bool:
    name = type(exc).__name__
    return isinstance(exc, (ConnectionError, OSError, TimeoutError)) or name in {
        "CannotConnectNowError",
        "ConnectionDoesNotExistError",
        "InterfaceError",
        "AdminShutdownError",
    }


def to_status(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and the client-safe message for any exception raised by a handler."""
    if isinstance(exc, VentaError):
        return exc.code, exc.message
    if _is_unavailable(exc):
        return grpc.StatusCode.UNAVAILABLE, "a dependency of this service is unavailable, retry later"
    return grpc.StatusCode.INTERNAL, "internal error"
