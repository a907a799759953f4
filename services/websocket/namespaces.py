"""The `/user` and `/vendor` namespaces: authenticate each socket, parse each event, report each refusal.

Every event goes through `EventNamespace.trigger_event`: it is counted and timed (bounded labels), traced (a
`traceparent` field in the payload continues the client's trace), handled, and any refusal becomes one `error`
event `{code, message}` on that socket only; the socket stays connected and the server keeps serving everyone
else. An event a client asked to acknowledge gets `{ok: true, ...}` or `{ok: false, code, message}` back.
A token that does not verify gets `error {code: UNAUTHORIZED}` and a disconnect (SPEC section 4): the socket is
accepted first (`always_connect`) so that the error can reach it, then disconnected by the server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import socketio
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind

from services.contracts.venta.user.v1 import user_pb2, user_pb2_grpc
from services.contracts.venta.vendor.v1 import vendor_pb2, vendor_pb2_grpc
from services.kit.auth import Authenticator, Principal, TokenRejected
from services.kit.grpc.client import PeerClient, PeerUnavailable, RemoteError
from services.kit.logging import request_id_var
from services.websocket.errors import ErrorCode, SocketError
from services.websocket.handshake import token_of
from services.websocket.live import USERS, VENDORS, LiveMap
from services.websocket.metrics import CONNECTIONS, CONNECTS, ERRORS, EVENT_DURATION, EVENTS_RECEIVED
from services.websocket.payloads import RegisterUser, RegisterVendor, VendorLocation, VendorOpen, Viewport, parse
from services.websocket.ratelimit import SocketRateLimits

log = logging.getLogger("venta.websocket")
tracer = trace.get_tracer("venta.websocket")

Handler = Callable[[str, "Caller", Any], Awaitable[dict[str, Any] | None]]
OWNERSHIP_TTL_S = 30.0

_REMOTE_CODES = {
    "NOT_FOUND": ErrorCode.NOT_FOUND,
    "PERMISSION_DENIED": ErrorCode.FORBIDDEN,
    "INVALID_ARGUMENT": ErrorCode.INVALID_PAYLOAD,
}


@dataclass
class Caller:
    """One authenticated socket: who it is and the vendors it speaks for (/vendor) or watches (/user)."""

    principal: Principal
    vendors: set[str] = field(default_factory=set)
    owned: frozenset[str] = frozenset()
    owned_until: float = 0.0


@dataclass(frozen=True)
class Limits:
    max_payload_bytes: int
    rates: SocketRateLimits


class EventNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    def __init__(self, namespace: str, *, live: LiveMap, authenticator: Authenticator, limits: Limits) -> None:
        super().__init__(namespace)
        self.live = live
        self.authenticator = authenticator
        self.limits = limits
        self.callers: dict[str, Caller] = {}
        self.handlers: dict[str, Handler] = {}
        self.stopping = False
        self._refusals: set[asyncio.Task[None]] = set()

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event == "connect":
            return await self._connect(args[0], args[1], args[2] if len(args) > 2 else None)
        if event == "disconnect":
            return await self._disconnect(args[0])
        sid, data = args[0], (args[1] if len(args) > 1 else None)
        handler = self.handlers.get(event)
        label = event if handler is not None else "other"
        EVENTS_RECEIVED.labels(self.namespace, label).inc()
        request_id_var.set(sid)
        parent = _client_trace(data)
        with (
            EVENT_DURATION.labels(self.namespace, label).time(),
            tracer.start_as_current_span(
                f"socket.io {self.namespace} {label}", context=parent, kind=SpanKind.SERVER
            ) as span,
        ):
            span.set_attribute("messaging.system", "socket.io")
            span.set_attribute("socketio.namespace", self.namespace)
            try:
                caller = self.callers.get(sid)
                if caller is None:
                    raise SocketError(ErrorCode.UNAUTHORIZED, "this socket is not authenticated")
                if handler is None:
                    raise SocketError(ErrorCode.INVALID_PAYLOAD, f"unknown event {event[:64]!r} on {self.namespace}")
                answer = await handler(sid, caller, data)
                return {"ok": True, **(answer or {})}
            except Exception as exc:  # noqa: BLE001 - every failure is reported on this socket, never raised
                refusal = _as_socket_error(exc)
                span.set_attribute("socketio.error", refusal.code.value)
                await self.error(sid, refusal)
                return {"ok": False, **refusal.payload()}

    async def error(self, sid: str, refusal: SocketError) -> None:
        ERRORS.labels(self.namespace, refusal.code.value).inc()
        await self.live.emit("error", refusal.payload(), room=sid, namespace=self.namespace, local=True)

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any) -> bool:
        request_id_var.set(sid)
        try:
            principal = await self.authenticator.authenticate(token_of(environ, auth))
        except Exception as exc:  # noqa: BLE001 - refused either way; the reason goes to the client
            refusal = _as_socket_error(exc)
            await self.error(sid, refusal)
            log.info("refused a %s socket: %s", self.namespace, refusal.message)
            # Disconnect once this handler has returned, with a plain DISCONNECT packet: returning False would send
            # one carrying data, which socket.io-client 4 rejects as a "parse error" instead of a server disconnect.
            task = asyncio.create_task(self.disconnect(sid, namespace=self.namespace), name=f"refuse-{sid}")
            self._refusals.add(task)
            task.add_done_callback(self._refusals.discard)
            return True
        caller = Caller(principal)
        self.callers[sid] = caller
        CONNECTS.labels(self.namespace).inc()
        CONNECTIONS.labels(self.namespace).inc()
        await self.connected(sid, caller)
        return True

    async def _disconnect(self, sid: str) -> None:
        caller = self.callers.pop(sid, None)
        if caller is None:
            return
        CONNECTIONS.labels(self.namespace).dec()
        self.limits.rates.forget(sid)
        try:
            await self.closed(sid, caller)
        except Exception:
            log.exception("cleaning up after %s socket %s failed", self.namespace, sid)

    async def connected(self, sid: str, caller: Caller) -> None:
        """Called once the socket is authenticated."""

    async def closed(self, sid: str, caller: Caller) -> None:
        """Called once the socket is gone."""


class UserNamespace(EventNamespace):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(USERS, **kwargs)
        self.handlers = {"register-user": self.register_user, "updateUserLocation": self.update_viewport}

    async def connected(self, sid: str, caller: Caller) -> None:
        self.live.user_connected(user_id=caller.principal.user_id, sid=sid)
        # the user's own room, where the notifications service pushes (`register-user` also joins it, for old clients)
        await self.live.sio.enter_room(sid, f"user:{caller.principal.user_id}", namespace=USERS)
        last = await _quietly(self.live.presence.last_viewport(caller.principal.user_id))
        if last is not None:  # a reconnect (perhaps to another replica): the user's rooms come back at once
            try:
                caller.vendors = await self.live.viewport(
                    sid=sid, user_id=caller.principal.user_id, view=Viewport.model_validate(last), watching=set()
                )
            except Exception as exc:  # noqa: BLE001 - the next viewport update will do it
                log.info("could not restore the viewport of %s (%s)", caller.principal.user_id, exc)

    async def closed(self, sid: str, caller: Caller) -> None:
        await self.live.user_socket_closed(user_id=caller.principal.user_id, sid=sid, watching=caller.vendors)

    async def register_user(self, sid: str, caller: Caller, data: Any) -> dict[str, Any]:
        payload = parse(RegisterUser, data, max_bytes=self.limits.max_payload_bytes)
        if payload.user_id != caller.principal.user_id:
            raise SocketError(ErrorCode.FORBIDDEN, "userId is not the user of this token")
        await self.live.sio.enter_room(sid, f"user:{payload.user_id}", namespace=USERS)
        return {"userId": payload.user_id}

    async def update_viewport(self, sid: str, caller: Caller, data: Any) -> dict[str, Any]:
        self.limits.rates.check("updateUserLocation", sid)
        view = parse(Viewport, data, max_bytes=self.limits.max_payload_bytes)
        caller.vendors = await self.live.viewport(
            sid=sid, user_id=caller.principal.user_id, view=view, watching=caller.vendors
        )
        return {"vendors": len(caller.vendors)}


class VendorNamespace(EventNamespace):
    def __init__(
        self,
        *,
        users: PeerClient[user_pb2_grpc.UserServiceAsyncStub],
        vendors: PeerClient[vendor_pb2_grpc.VendorServiceAsyncStub],
        **kwargs: Any,
    ) -> None:
        super().__init__(VENDORS, **kwargs)
        self.users = users
        self.vendors = vendors
        self.handlers = {
            "register-vendor": self.register_vendor,
            "updateVendorLocation": self.update_location,
            "setVendorOpen": self.set_open,
            "heartbeat": self.heartbeat,
        }

    async def closed(self, sid: str, caller: Caller) -> None:
        if not self.stopping:  # a replica going away is not its vendors going away: presence stays in Redis
            await self.live.vendor_socket_closed(vendor_ids=caller.vendors, sid=sid)

    async def _check_owner(self, caller: Caller, vendor_id: str) -> None:
        if vendor_id in caller.vendors:
            return
        if vendor_id not in caller.owned or time.monotonic() > caller.owned_until:
            answer = await self.users.unary(
                self.users.stub.GetUserVendors, user_pb2.UserVendorRequest(user_id=caller.principal.user_id)
            )
            caller.owned = frozenset(v.id for v in answer.vendors)
            caller.owned_until = time.monotonic() + OWNERSHIP_TTL_S
        if vendor_id not in caller.owned:
            raise SocketError(ErrorCode.FORBIDDEN, f"vendor {vendor_id} is not owned by this user")
        caller.vendors.add(vendor_id)

    async def register_vendor(self, sid: str, caller: Caller, data: Any) -> dict[str, Any]:
        payload = parse(RegisterVendor, data, max_bytes=self.limits.max_payload_bytes)
        await self._check_owner(caller, payload.vendor_id)
        await self.live.vendor_alive(vendor_id=payload.vendor_id, sid=sid)
        return {"vendorId": payload.vendor_id}

    async def update_location(self, sid: str, caller: Caller, data: Any) -> dict[str, Any]:
        self.limits.rates.check("updateVendorLocation", sid)
        payload = parse(VendorLocation, data, max_bytes=self.limits.max_payload_bytes)
        await self._check_owner(caller, payload.vendor_id)
        updated_at = await self.live.vendor_moved(
            vendor_id=payload.vendor_id, owner=caller.principal.user_id, sid=sid, lat=payload.lat, long=payload.long
        )
        return {"vendorId": payload.vendor_id, "updatedAt": updated_at}

    async def set_open(self, sid: str, caller: Caller, data: Any) -> dict[str, Any]:
        """Open or close the vendor (the vendor service checks ownership too); `vendor.updated` carries `open`."""
        self.limits.rates.check("setVendorOpen", sid)
        payload = parse(VendorOpen, data, max_bytes=self.limits.max_payload_bytes)
        await self._check_owner(caller, payload.vendor_id)
        await self.vendors.unary(
            self.vendors.stub.SetVendorOpen,
            vendor_pb2.VendorOpenData(id=payload.vendor_id, user_id=caller.principal.user_id, open=payload.open),
        )
        return {"vendorId": payload.vendor_id, "open": payload.open}

    async def heartbeat(self, sid: str, caller: Caller, data: Any) -> dict[str, Any]:
        for vendor_id in caller.vendors:
            await self.live.vendor_alive(vendor_id=vendor_id, sid=sid)
        return {"vendors": sorted(caller.vendors)}


def _as_socket_error(exc: Exception) -> SocketError:
    if isinstance(exc, SocketError):
        return exc
    if isinstance(exc, TokenRejected):
        return SocketError(ErrorCode.UNAUTHORIZED, str(exc))
    if isinstance(exc, PeerUnavailable):
        return SocketError(ErrorCode.UNAVAILABLE, "a backing service is unavailable; retry shortly")
    if isinstance(exc, RemoteError):
        return SocketError(_REMOTE_CODES.get(exc.code.name, ErrorCode.INTERNAL), str(exc))
    log.error("unexpected failure handling a socket event", exc_info=exc)
    return SocketError(ErrorCode.INTERNAL, "internal error")


def _client_trace(data: Any) -> Context | None:
    """The client's trace context, when it sent one (`traceparent`/`tracestate` fields beside the payload)."""
    if not isinstance(data, dict) or not isinstance(data.get("traceparent"), str):
        return None
    carrier = {k: data[k] for k in ("traceparent", "tracestate") if isinstance(data.get(k), str)}
    return propagate.extract(carrier)


async def _quietly(awaitable: Awaitable[Any]) -> Any:
    try:
        return await awaitable
    except Exception as exc:  # noqa: BLE001 - an optional nicety (restoring rooms) must not refuse a socket
        log.info("skipped restoring rooms (%s)", type(exc).__name__)
        return None
