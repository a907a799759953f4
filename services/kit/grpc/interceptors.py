"""One server interceptor that gives every RPC its server span, a request id, a log line, metrics and the error mapping.

Handlers raise domain errors (`services.kit.errors`); this is the only place they become gRPC statuses. The span is
the one OpenTelemetry's grpc instrumentation would make (named by the full method, kind SERVER, parented by the
caller's `traceparent`, the `rpc.*` and `net.peer.*` attributes of the semantic conventions, status ERROR for the
codes that mean the server failed), started before the rest so log lines carry the trace id and the latency
histogram the trace as its exemplar. It is made here rather than by `opentelemetry-instrumentation-grpc`'s server
interceptor (no longer a dependency; `PeerClient` makes the CLIENT spans the same way) because that one, a second
interceptor in the chain, re-wrapped the handler and the servicer context and built every attribute of every call,
recorded or not: the vendor service spent ~8% more CPU per GetVendorById with it (bench/README.md, "gRPC server
spans"). Here a call that is not recorded costs one metadata scan, the sampler and a context attach; attributes are
built only for recorded spans.
Health checks and reflection get no span, no metrics and no log line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from services.kit.errors import InvalidArgument, to_status
from services.kit.grpc import Context
from services.kit.logging import new_request_id, request_id_var
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
UNOBSERVED = frozenset({"Check", "Watch", "ServerReflectionInfo"})  # health checks and reflection
# The codes that mean the server failed: its span's status is ERROR (OpenTelemetry's conventions for a server span;
# the others are the caller's mistake and leave it unset).
SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


def _request_id(metadata: dict[str, Any]) -> str:
    value = metadata.get(REQUEST_ID_KEY)
    return value if isinstance(value, str) and 0 < len(value) <= 128 else new_request_id()


def rpc_attributes(full_method: str) -> dict[str, str]:
    """A gRPC span's `rpc.*` attributes, server or client: `/venta.vendor.v1.VendorService/GetVendorById`."""
    service, _, method = full_method.lstrip("/").partition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}


def _peer_attributes(peer: str) -> dict[str, str]:
    """`ipv4:127.0.0.1:57284`, `ipv6:[::1]:57284` (the first of a comma-separated list): `net.peer.ip`/`.port`."""
    kind, _, address = peer.split(",")[0].partition(":")
    host, _, port = address.rpartition(":")
    if kind not in ("ipv4", "ipv6") or not host:
        return {}
    return {"net.peer.ip": host.strip("[]"), "net.peer.port": port}


class ServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """`tracer`: where the server spans go (None: no spans, as with `OTEL_SDK_DISABLED=true`)."""

    def __init__(self, service: str, tracer: trace.Tracer | None = None) -> None:
        self.service = service
        self.tracer = tracer
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler[Any, Any], grpc.RpcMethodHandler[Any, Any]]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        full_method: str = handler_call_details.method
        known = self._wrapped.get(full_method)  # the server's handler of a method is one object: wrapped once
        if known is None or known[0] is not handler:
            known = (handler, self._wrap(full_method, handler))
            self._wrapped[full_method] = known
        return known[1]

    def _wrap(self, full_method: str, handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
        method = full_method.rsplit("/", 1)[-1]
        if method in UNOBSERVED:
            return handler
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(full_method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(full_method, cast(Callable[..., AsyncIterator[Any]], handler.unary_stream)),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _unary(self, full_method: str, behaviour: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        async def handle(request: Any, context: Context) -> Any:
            with _Call(self.service, full_method, context, self.tracer) as call:
                try:
                    return await behaviour(request, context)
                except Exception as exc:  # noqa: BLE001 - the edge: every error becomes a status here
                    await call.fail(exc)

        return handle

    def _stream(
        self, full_method: str, behaviour: Callable[..., AsyncIterator[Any]]
    ) -> Callable[..., AsyncIterator[Any]]:
        async def handle(request: Any, context: Context) -> AsyncIterator[Any]:
            with _Call(self.service, full_method, context, self.tracer) as call:
                try:
                    async for item in behaviour(request, context):
                        yield item
                except Exception as exc:  # noqa: BLE001 - the edge: every error becomes a status here
                    await call.fail(exc)

        return handle


class _Call:
    """Bookkeeping of one RPC: server span, request id, in-flight gauge, latency, status counters, one log line."""

    def __init__(self, service: str, full_method: str, context: Context, tracer: trace.Tracer | None) -> None:
        self.service, self.full_method, self.context, self.tracer = service, full_method, context, tracer
        self.method = full_method.rsplit("/", 1)[-1]
        self.code = grpc.StatusCode.OK
        self.details = ""
        self.error: Exception | None = None
        self.span: trace.Span | None = None

    def __enter__(self) -> _Call:
        metadata = dict(self.context.invocation_metadata() or ())
        if self.tracer is not None:
            self._start_span(self.tracer, metadata)
        self.token = request_id_var.set(_request_id(metadata))
        self.started = time.perf_counter()
        self.measured = enabled()
        if self.measured:
            GRPC_SERVER_IN_FLIGHT.labels(self.service).inc()
        return self

    def _start_span(self, tracer: trace.Tracer, metadata: dict[str, Any]) -> None:
        parent = propagate.extract(metadata) if metadata else None
        span = tracer.start_span(self.full_method, context=parent, kind=SpanKind.SERVER)
        if span.is_recording():
            span.set_attributes(
                {
                    **rpc_attributes(self.full_method),
                    **_peer_attributes(self.context.peer() or ""),
                    **({"rpc.user_agent": metadata["user-agent"]} if "user-agent" in metadata else {}),
                }
            )
        self.span = span
        self.span_token = otel_context.attach(trace.set_span_in_context(span, parent))

    def _end_span(self, span: trace.Span, exc: BaseException | None) -> None:
        if span.is_recording():
            span.set_attribute("rpc.grpc.status_code", self.code.value[0])
            if self.code in SERVER_FAULTS:
                span.set_status(Status(StatusCode.ERROR, f"{self.code}:{self.details}"))
                if exc is not None and not isinstance(exc, grpc.aio.AbortError):  # an unexpected error: its trace
                    span.record_exception(exc)
        span.end()
        otel_context.detach(self.span_token)

    async def fail(self, exc: Exception) -> None:
        self.error = exc
        if isinstance(exc, grpc.aio.AbortError):  # the handler aborted on purpose
            self.code = self.context.code() or grpc.StatusCode.UNKNOWN  # type: ignore[assignment]
            self.details = str(self.context.details() or "")
            raise exc
        self.code, message = to_status(exc)
        self.details = message
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
        if self.span is not None:  # last: the metrics above took the trace as their exemplar
            self._end_span(self.span, self.error)
