"""Calls to a peer service: a deadline on every call, a circuit breaker per peer, errors in domain terms.

The breaker (pybreaker) counts only failures that say the peer is unwell (UNAVAILABLE, DEADLINE_EXCEEDED,
INTERNAL, UNKNOWN, RESOURCE_EXHAUSTED); a NOT_FOUND or PERMISSION_DENIED is an answer, not a failure. While the
breaker is open, calls fail at once with `Unavailable` instead of waiting for a deadline.

Every call made is a CLIENT span (named by the full method, `rpc.*` attributes, ERROR for a status other than OK,
the way OpenTelemetry's grpc instrumentation names and marks them), a child of the caller's current span, whose
context goes to the peer in the call's `traceparent`. The span is made here, around the call, rather than by the
client interceptors of `opentelemetry-instrumentation-grpc`: grpc.aio runs an intercepted call through a second task
and call object, ~10% of the caller's CPU per call (bench/README.md, "gRPC server spans"). A call inside `untraced()`
(probes, polling) or refused by the open breaker gets no span.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar, cast

import grpc
import pybreaker
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import SpanKind, Status, StatusCode

from services.kit.errors import Unavailable, VentaError
from services.kit.grpc.interceptors import REQUEST_ID_KEY, rpc_attributes
from services.kit.grpc.tls import GrpcTls
from services.kit.logging import request_id_var
from services.kit.metrics import (
    BREAKER_REJECTIONS,
    BREAKER_STATE,
    BREAKER_TRANSITIONS,
    GRPC_CLIENT_LATENCY,
    GRPC_CLIENT_REQUESTS,
    enabled,
    trace_exemplar,
)
from services.kit.telemetry import grpc_tracer

StubT = TypeVar("StubT")
RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")

PEER_FAILURES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
# How a peer's replicas share the calls: the target (in a cluster, `dns:///<headless Service>:<port>`) resolves to
# every ready replica, and calls go round robin over one connection to each. The resolver looks again whenever a
# connection goes away (a replica stopped, or the server's max connection age sent GOAWAY), at most every 2 s
# instead of gRPC's 30 s, so a rolled or added replica is seen within seconds.
# Retries: gRPC retries by itself a call that never reached a server (sent on a connection just closed), and the
# retry policy below adds one case, a call CANCELLED by the server: a gRPC server that stops cancels the calls it has
# received but not yet started (grpc/grpc#41785), so a call that reaches a replica as it stops would fail although
# any other replica would serve it. Such a retry is safe for writes too: the server also cancels, at the end of its
# grace, a call it did start, but the grace is longer than any caller's deadline (the operator sets
# VENTA_SHUTDOWN_GRACE_S above VENTA_GRPC_TIMEOUT_S), so that caller has given up already (DEADLINE_EXCEEDED), and
# gRPC never retries a call once the server has answered anything. Every other failure is the breaker's and the
# caller's to judge. The retries fit in the call's one deadline.
SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [
        {
            "name": [{}],
            "retryPolicy": {
                "maxAttempts": 3,
                "initialBackoff": "0.01s",
                "maxBackoff": "0.1s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["CANCELLED"],
            },
        }
    ],
}
CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
    ("grpc.dns_min_time_between_resolutions_ms", 2_000),
    ("grpc.keepalive_time_ms", 30_000),
]
_STATE_VALUE = {pybreaker.STATE_CLOSED: 0, pybreaker.STATE_HALF_OPEN: 1, pybreaker.STATE_OPEN: 2}


class PeerUnavailable(Unavailable):
    """The peer failed in a way a retry may fix, or its breaker is open; callers may still tell which.

    `peer_code` is the status the peer gave (UNAVAILABLE when the breaker refused the call), so an HTTP edge can map
    a peer's RESOURCE_EXHAUSTED or INTERNAL differently from an outage.
    """

    def __init__(self, message: str, *, peer_code: grpc.StatusCode, breaker_open: bool = False) -> None:
        super().__init__(message)
        self.peer_code = peer_code
        self.breaker_open = breaker_open


class RemoteError(VentaError):
    """A peer answered with a non-OK status that is the caller's to handle (NOT_FOUND, PERMISSION_DENIED, ...)."""

    def __init__(self, code: grpc.StatusCode, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


def _is_answer(exc: BaseException) -> bool:
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() not in PEER_FAILURES


class _BreakerMetrics(pybreaker.CircuitBreakerListener):
    def state_change(self, cb: pybreaker.CircuitBreaker, old_state: Any, new_state: Any) -> None:
        BREAKER_STATE.labels(cb.name).set(_STATE_VALUE[new_state.name])
        BREAKER_TRANSITIONS.labels(cb.name, new_state.name).inc()


def make_breaker(
    name: str, *, fail_max: int, reset_timeout_s: float, state_storage: Any = None
) -> pybreaker.CircuitBreaker:
    breaker = pybreaker.CircuitBreaker(
        fail_max=fail_max,
        reset_timeout=reset_timeout_s,
        exclude=[_is_answer],
        listeners=[_BreakerMetrics()],
        name=name,
        state_storage=state_storage,
    )
    BREAKER_STATE.labels(name).set(_STATE_VALUE[breaker.current_state])
    return breaker


def _translate(target: str, exc: grpc.aio.AioRpcError) -> VentaError:
    code = exc.code()
    if code in PEER_FAILURES:
        return PeerUnavailable(f"{target} is unavailable ({code.name})", peer_code=code)
    trailing: Any = exc.trailing_metadata() or ()
    field = next((v for k, v in trailing if k == "venta-field"), None)
    return RemoteError(code, exc.details() or code.name, field if isinstance(field, str) else None)


class _RecordingChannel:
    """What a generated stub is built on: the channel, noting the full method path of each multi-callable it makes
    (`/venta.vendor.v1.VendorService/GetVendorById`), which the spans are named by."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel
        self.paths: dict[int, str] = {}

    def _recording(self, kind: str) -> Callable[..., Any]:
        def make(method: str, *args: Any, **kwargs: Any) -> Any:
            rpc = getattr(self.channel, kind)(method, *args, **kwargs)
            self.paths[id(rpc)] = method
            return rpc

        return make

    def __getattr__(self, name: str) -> Any:
        if name in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
            return self._recording(name)
        return getattr(self.channel, name)


def _end_span(span: trace.Span, code: grpc.StatusCode, error: BaseException | None) -> None:
    if span.is_recording():
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code != grpc.StatusCode.OK:
            details = error.details() if isinstance(error, grpc.aio.AioRpcError) else None
            span.set_status(Status(StatusCode.ERROR, f"{code.name}: {details or ''}".rstrip(": ")))
            if error is not None:
                span.record_exception(error)
    span.end()


class PeerClient(Generic[StubT]):
    """A stub for one peer service, behind a deadline and a breaker.

    Calls name the stub's own method, so the request and the answer keep their generated types:
    `await vendors.unary(vendors.stub.GetVendorById, VendorLookupByIdData(id=...))` is a `VendorLookupResponse`.
    """

    def __init__(
        self,
        *,
        target_name: str,
        address: str,
        stub: Callable[[grpc.aio.Channel], StubT],
        timeout_s: float,
        breaker: pybreaker.CircuitBreaker,
        tls: GrpcTls | None = None,
    ) -> None:
        """`tls`: mutual TLS to the peer (same target, same round robin); None, plaintext."""
        self.target_name = target_name
        self.timeout_s = timeout_s
        self.breaker = breaker
        if tls is None:
            self.channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        else:
            self.channel = grpc.aio.secure_channel(
                address, tls.channel_credentials(), options=[*CHANNEL_OPTIONS, *tls.channel_options()]
            )
        recording = _RecordingChannel(self.channel)
        self.stub = stub(cast(grpc.aio.Channel, recording))
        # the generated stub holds one multi-callable per RPC: their names label the client metrics, their paths
        # name the spans
        self._methods = {id(rpc): (name, recording.paths[id(rpc)]) for name, rpc in vars(self.stub).items()}
        self._tracer = grpc_tracer()

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        rid = request_id_var.get()
        return ((REQUEST_ID_KEY, rid),) if rid else ()

    def _method(self, rpc: object) -> tuple[str, str]:
        """The RPC's name (`GetVendorById`) and full path."""
        method = self._methods.get(id(rpc))
        if method is None:
            raise TypeError(f"not a method of the {self.target_name} stub: {rpc!r}")
        return method

    def _start(self, path: str) -> tuple[trace.Span | None, tuple[tuple[str, str], ...]]:
        """The call's CLIENT span (None: no tracing here) and its metadata: the request id and the span's context."""
        metadata = self._metadata()
        if self._tracer is None or not is_instrumentation_enabled():
            return None, metadata
        span = self._tracer.start_span(path, kind=SpanKind.CLIENT)
        if span.is_recording():
            span.set_attributes(rpc_attributes(path))
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        return span, (*metadata, *carrier.items())

    def _refused(self) -> PeerUnavailable:
        """The breaker is open: the call was not made (counted)."""
        BREAKER_REJECTIONS.labels(self.breaker.name).inc()
        return PeerUnavailable(
            f"{self.target_name} is unavailable (circuit open)",
            peer_code=grpc.StatusCode.UNAVAILABLE,
            breaker_open=True,
        )

    async def unary(
        self,
        rpc: grpc.aio.UnaryUnaryMultiCallable[RequestT, ResponseT],
        request: RequestT,
        *,
        timeout_s: float | None = None,
    ) -> ResponseT:
        """A unary call through the breaker, with the deadline; peer failures and answers as domain errors."""
        method, path = self._method(rpc)
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        span: trace.Span | None = None
        error: BaseException | None = None
        try:
            with self.breaker.calling():
                span, metadata = self._start(path)
                return await rpc(request, timeout=timeout_s or self.timeout_s, metadata=metadata)  # type: ignore[no-any-return]
        except pybreaker.CircuitBreakerError:
            code = grpc.StatusCode.UNAVAILABLE
            raise self._refused() from None
        except grpc.aio.AioRpcError as exc:
            code, error = exc.code(), exc
            raise _translate(self.target_name, exc) from None
        except asyncio.CancelledError:  # the caller gave up (its own deadline, a client gone)
            code = grpc.StatusCode.CANCELLED
            raise
        finally:
            if span is not None:
                _end_span(span, code, error)
            if enabled():
                GRPC_CLIENT_REQUESTS.labels(self.target_name, method, code.name).inc()
                GRPC_CLIENT_LATENCY.labels(self.target_name, method).observe(
                    time.perf_counter() - started, trace_exemplar()
                )

    async def server_stream(
        self,
        rpc: grpc.aio.UnaryStreamMultiCallable[RequestT, ResponseT],
        request: RequestT,
        *,
        timeout_s: float | None = None,
    ) -> AsyncIterator[ResponseT]:
        """A server-streaming call; the deadline covers the whole stream, and so does its span."""
        _, path = self._method(rpc)
        code = grpc.StatusCode.OK
        span: trace.Span | None = None
        error: BaseException | None = None
        try:
            with self.breaker.calling():
                span, metadata = self._start(path)
                async for item in rpc(request, timeout=timeout_s or self.timeout_s, metadata=metadata):
                    yield item
        except pybreaker.CircuitBreakerError:
            raise self._refused() from None
        except grpc.aio.AioRpcError as exc:
            code, error = exc.code(), exc
            raise _translate(self.target_name, exc) from None
        except (asyncio.CancelledError, GeneratorExit):  # the caller stopped reading
            code = grpc.StatusCode.CANCELLED
            raise
        finally:
            if span is not None:
                _end_span(span, code, error)

    async def close(self) -> None:
        await self.channel.close(None)
