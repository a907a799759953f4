"""One server interceptor that gives every RPC a request id, a log line, metrics and the error mapping.

Handlers raise domain errors (`services.kit.errors`); this is the only place they become gRPC statuses. Tracing is
done by OpenTelemetry's own grpc instrumentation (`services.kit.telemetry.grpc_server_interceptors`), installed
before this interceptor (outermost), so log lines carry the trace id and the latency histogram the trace as its
exemplar.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import grpc

from services.kit.errors import InvalidArgument, to_status
from services.kit.grpc import Context
from services.kit.logging import request_id_var
from services.kit.metrics import (
    GRPC_SERVER_ERRORS,
    GRPC_SERVER_IN_FLIGHT,
    GRPC_SERVER_LATENCY,
    GRPC_SERVER_REQUESTS,
    enabled,
    trace_exemplar,
)

log = logging.getLogger("venta.grpc")

REQUEST_ID_KEY = "x-request-id"
FIELD_KEY = "venta-field"


def _request_id(context: Context) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_KEY and isinstance(value, str) and 0 < len(value) <= 128:
            return value
    return uuid.uuid4().hex


class ServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self, service: str) -> None:
        self.service = service

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method.rsplit("/", 1)[-1]
        if handler is None or method in {"Check", "Watch", "ServerReflectionInfo"}:
            return handler
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, cast(Callable[..., AsyncIterator[Any]], handler.unary_stream)),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _unary(self, method: str, behaviour: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        async def handle(request: Any, context: Context) -> Any:
            with _Call(self.service, method, context) as call:
                try:
                    return await behaviour(request, context)
                except Exception as exc:  # noqa: BLE001 - the edge: every error becomes a status here
                    await call.fail(exc)

        return handle

    def _stream(self, method: str, behaviour: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
        async def handle(request: Any, context: Context) -> AsyncIterator[Any]:
            with _Call(self.service, method, context) as call:
                try:
                    async for item in behaviour(request, context):
                        yield item
                except Exception as exc:  # noqa: BLE001 - the edge: every error becomes a status here
                    await call.fail(exc)

        return handle


class _Call:
    """Bookkeeping of one RPC: request id, in-flight gauge, latency, status counters, one log line."""

    def __init__(self, service: str, method: str, context: Context) -> None:
        self.service, self.method, self.context = service, method, context
        self.code = grpc.StatusCode.OK

    def __enter__(self) -> _Call:
        self.token = request_id_var.set(_request_id(self.context))
        self.started = time.perf_counter()
        self.measured = enabled()
        if self.measured:
            GRPC_SERVER_IN_FLIGHT.labels(self.service).inc()
        return self

    async def fail(self, exc: Exception) -> None:
        if isinstance(exc, grpc.aio.AbortError):  # the handler aborted on purpose
            self.code = self.context.code() or grpc.StatusCode.UNKNOWN  # type: ignore[assignment]
            raise exc
        self.code, message = to_status(exc)
        trailing: tuple[tuple[str, str], ...] = ()
        if isinstance(exc, InvalidArgument):
            trailing = ((FIELD_KEY, exc.field),)
        level = logging.ERROR if self.code == grpc.StatusCode.INTERNAL else logging.INFO
        log.log(
            level,
            "%s failed: %s",
            self.method,
            message,
            exc_info=level == logging.ERROR,
            extra={"grpc_method": self.method, "grpc_code": self.code.name, "error_type": type(exc).__name__},
        )
        await self.context.abort(self.code, message, trailing_metadata=trailing)

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is asyncio.CancelledError:
            self.code = grpc.StatusCode.CANCELLED
        elapsed = time.perf_counter() - self.started
        code = self.code.name
        if self.measured:
            GRPC_SERVER_IN_FLIGHT.labels(self.service).dec()
            GRPC_SERVER_REQUESTS.labels(self.service, self.method, code).inc()
            GRPC_SERVER_LATENCY.labels(self.service, self.method).observe(elapsed, trace_exemplar())
            if self.code != grpc.StatusCode.OK:
                GRPC_SERVER_ERRORS.labels(self.service, self.method, code).inc()
        log.debug(
            "%s %s in %.1f ms",
            self.method,
            code,
            elapsed * 1000,
            extra={"grpc_method": self.method, "grpc_code": code, "duration_ms": round(elapsed * 1000, 2)},
        )
        try:
            request_id_var.reset(self.token)
        except ValueError:  # a streaming handler may finish in another context than it started in
            pass
