"""Calls to a peer service: a deadline on every call, a circuit breaker per peer, errors in domain terms.

The breaker (pybreaker) counts only failures that say the peer is unwell (UNAVAILABLE, DEADLINE_EXCEEDED,
INTERNAL, UNKNOWN, RESOURCE_EXHAUSTED); a NOT_FOUND or PERMISSION_DENIED is an answer, not a failure. While the
breaker is open, calls fail at once with `Unavailable` instead of waiting for a deadline.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar

import grpc
import pybreaker

from services.kit.errors import Unavailable, VentaError
from services.kit.grpc.interceptors import REQUEST_ID_KEY
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
from services.kit.telemetry import grpc_client_interceptors

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
            self.channel = grpc.aio.insecure_channel(
                address, interceptors=grpc_client_interceptors(), options=CHANNEL_OPTIONS
            )
        else:
            self.channel = grpc.aio.secure_channel(
                address,
                tls.channel_credentials(),
                interceptors=grpc_client_interceptors(),
                options=[*CHANNEL_OPTIONS, *tls.channel_options()],
            )
        self.stub = stub(self.channel)
        # the generated stub holds one multi-callable per RPC: their names label the client metrics
        self._method_names = {id(rpc): name for name, rpc in vars(self.stub).items()}

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        rid = request_id_var.get()
        return ((REQUEST_ID_KEY, rid),) if rid else ()

    def _name(self, rpc: object) -> str:
        name = self._method_names.get(id(rpc))
        if name is None:
            raise TypeError(f"not a method of the {self.target_name} stub: {rpc!r}")
        return name

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
        method = self._name(rpc)
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            with self.breaker.calling():
                return await rpc(request, timeout=timeout_s or self.timeout_s, metadata=self._metadata())  # type: ignore[no-any-return]
        except pybreaker.CircuitBreakerError:
            code = grpc.StatusCode.UNAVAILABLE
            raise self._refused() from None
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            raise _translate(self.target_name, exc) from None
        finally:
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
        """A server-streaming call; the deadline covers the whole stream."""
        self._name(rpc)
        try:
            with self.breaker.calling():
                async for item in rpc(request, timeout=timeout_s or self.timeout_s, metadata=self._metadata()):
                    yield item
        except pybreaker.CircuitBreakerError:
            raise self._refused() from None
        except grpc.aio.AioRpcError as exc:
            raise _translate(self.target_name, exc) from None

    async def close(self) -> None:
        await self.channel.close(None)
