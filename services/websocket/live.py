"""The live map: what happens when a vendor moves, a user pans, or a vendor goes quiet.

Kept apart from the Socket.IO namespaces (which only authenticate, parse and report errors) so that each rule is
stated once: a vendor's position goes to the location service before anyone is told; watchers are told through the
vendor's room, which python-socketio's Redis manager carries to every replica; a vendor going OFFLINE is removed
from the location index (it no longer shows in viewports), announced to its room and published on the bus once,
whichever replica noticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

import socketio

from services.contracts.venta.location.v1 import location_pb2, location_pb2_grpc
from services.event_catalog import WebsocketUserData, WebsocketVendorData
from services.kit.grpc.client import PeerClient
from services.websocket.metrics import DELIVERIES, PRESENCE_TRANSITIONS, VENDOR_PRESENCE
from services.websocket.notifications import Notifier
from services.websocket.payloads import Viewport
from services.websocket.positions import PositionRecorder
from services.websocket.presence import Offline, PresenceStore, State

log = logging.getLogger("venta.websocket")

USERS = "/user"
VENDORS = "/vendor"


def _now() -> datetime:
    return datetime.now(UTC)


def _point(location: location_pb2.Location) -> dict[str, float]:
    return {"lat": location.lat, "long": location.long}


class LiveMap:
    def __init__(
        self,
        *,
        sio: socketio.AsyncServer,
        location: PeerClient[location_pb2_grpc.LocationServiceAsyncStub],
        positions: PositionRecorder,
        presence: PresenceStore,
        notifier: Notifier,
        max_viewport_vendors: int,
    ) -> None:
        self.sio = sio
        self.location = location
        self.positions = positions
        self.presence = presence
        self.notifier = notifier
        self.max_viewport_vendors = max_viewport_vendors

    async def emit(self, event: str, data: Any, *, room: str, namespace: str, local: bool = False) -> None:
        """Emit to a room (every replica, through Redis) or, with `local`, to a socket of this replica."""
        await self.sio.emit(event, data, room=room, namespace=namespace, ignore_queue=local)
        DELIVERIES.labels(event).inc()

    # ---- vendors -----------------------------------------------------------------------------------------------

    async def vendor_moved(self, *, vendor_id: str, owner: str, sid: str, lat: float, long: float) -> str:
        """Store the position, then tell the vendor's watchers; returns the location service's timestamp.

        The vendor's record follows in the background, throttled (`PositionRecorder`), so search finds it moving.
        """
        answer = await self.location.unary(
            self.location.stub.UpdateVendorLocation,
            location_pb2.LocationUpdate(entity_id=vendor_id, location=location_pb2.Location(lat=lat, long=long)),
        )
        self.positions.moved(vendor_id, owner, lat, long)
        await self.vendor_alive(vendor_id=vendor_id, sid=sid)
        await self.emit(
            "vendor_sync", {"id": vendor_id, "location": {"lat": lat, "long": long}}, room=vendor_id, namespace=USERS
        )
        return str(answer.updated_at)

    async def vendor_alive(self, *, vendor_id: str, sid: str) -> None:
        before = await self.presence.seen(vendor_id, sid, time.time())
        if before is State.OFFLINE:
            PRESENCE_TRANSITIONS.labels(State.ONLINE.value).inc()
            self.notifier.publish(
                "websocket.vendor.connected", WebsocketVendorData(vendor_id=vendor_id, socket_id=sid, timestamp=_now())
            )
        elif before is State.AWAY:
            PRESENCE_TRANSITIONS.labels(State.ONLINE.value).inc()

    async def vendor_offline(self, gone: Offline) -> None:
        """Announce a vendor that went OFFLINE (the caller won the transition: this runs once per going)."""
        PRESENCE_TRANSITIONS.labels(State.OFFLINE.value).inc()
        self.positions.forget(gone.vendor_id)
        try:
            await self.location.unary(
                self.location.stub.RemoveVendorLocation, location_pb2.RemoveLocationRequest(entity_id=gone.vendor_id)
            )
        except Exception as exc:  # noqa: BLE001 - the announcement must still go out; the index entry ages out
            log.warning("could not remove the location of offline vendor %s (%s)", gone.vendor_id, exc)
        await self.emit("vendor_disconnect", {"id": gone.vendor_id}, room=gone.vendor_id, namespace=USERS)
        affected = await self.presence.watchers(gone.vendor_id, time.time())
        self.notifier.publish(
            "websocket.vendor.disconnected",
            WebsocketVendorData(
                vendor_id=gone.vendor_id, socket_id=gone.socket_id, timestamp=_now(), affected_users=affected
            ),
        )

    async def vendor_socket_closed(self, *, vendor_ids: set[str], sid: str) -> None:
        for vendor_id in vendor_ids:
            gone = await self.presence.disconnected(vendor_id, sid)
            if gone is not None:
                await self.vendor_offline(gone)

    # ---- users -------------------------------------------------------------------------------------------------

    async def viewport(self, *, sid: str, user_id: str, view: Viewport, watching: set[str]) -> set[str]:
        """Answer `vendor_channels`, move the socket between vendor rooms; returns the rooms it is now in."""
        answer = await self.location.unary(
            self.location.stub.VendorLocations,
            location_pb2.VendorLocationRequest(
                sw_location=location_pb2.Location(lat=view.sw_location.lat, long=view.sw_location.long),
                ne_location=location_pb2.Location(lat=view.ne_location.lat, long=view.ne_location.long),
            ),
        )
        vendors = list(answer.vendors)[: self.max_viewport_vendors]
        inside = {v.id for v in vendors}
        entered, left = inside - watching, watching - inside
        for vendor_id in left:
            await self.sio.leave_room(sid, vendor_id, namespace=USERS)
        for vendor_id in entered:
            await self.sio.enter_room(sid, vendor_id, namespace=USERS)
        await self.presence.watch(
            user_id=user_id,
            sid=sid,
            entered=entered,
            left=left,
            viewport=view.model_dump(by_alias=True),
            now=time.time(),
        )
        channels = [{"id": v.id, "location": _point(v.location)} for v in vendors]
        await self.emit("vendor_channels", channels, room=sid, namespace=USERS, local=True)
        return inside

    def user_connected(self, *, user_id: str, sid: str) -> None:
        self.notifier.publish(
            "websocket.user.connected", WebsocketUserData(user_id=user_id, socket_id=sid, timestamp=_now())
        )

    async def user_socket_closed(self, *, user_id: str, sid: str, watching: set[str]) -> None:
        await self.presence.unwatch(user_id=user_id, sid=sid, vendor_ids=watching)
        self.notifier.publish(
            "websocket.user.disconnected", WebsocketUserData(user_id=user_id, socket_id=sid, timestamp=_now())
        )

    # ---- presence sweeps ---------------------------------------------------------------------------------------

    async def sweep(self) -> None:
        now = time.time()
        away, gone = await self.presence.sweep(now)
        for _ in away:
            PRESENCE_TRANSITIONS.labels(State.AWAY.value).inc()
        for offline in gone:
            await self.vendor_offline(offline)
        for state, count in (await self.presence.counts(now)).items():
            VENDOR_PRESENCE.labels(state.value).set(count)

    async def sweep_until(self, stop: asyncio.Event, interval_s: float) -> None:
        """Sweep every `interval_s` until `stop` is set (an event, not only cancellation: a Redis client
        interrupted mid-command may turn the cancellation into a connection error)."""
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception as exc:  # noqa: BLE001 - Redis away: try again next round
                log.warning("presence sweep failed (%s: %s)", type(exc).__name__, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
