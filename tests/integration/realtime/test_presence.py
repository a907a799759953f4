"""Presence (ONLINE -> AWAY -> OFFLINE), what watchers and the bus are told, and the per-socket rate limits.

The module's gateway runs with AWAY after 1 s and OFFLINE after 2.5 s; the `websocket.*` events are read from NATS
by a plain subscriber, as any consumer of the bus would.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from prometheus_client import REGISTRY

from services.kit.embedded import Nats
from services.websocket.presence import State

from .conftest import Realtime, unique_area


class BusEvents:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.arrived = asyncio.Condition()

    async def on_message(self, message: Any) -> None:
        async with self.arrived:
            self.received.append(json.loads(message.data))
            self.arrived.notify_all()

    async def wait_for(self, event_type: str, key: str, value: str, wait_s: float = 10.0) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            return next((e for e in self.received if e["type"] == event_type and e["data"].get(key) == value), None)

        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: found() is not None), wait_s)
        event = found()
        assert event is not None
        return event


@pytest.fixture
async def bus(nats_server: Nats) -> AsyncIterator[BusEvents]:
    events = BusEvents()
    client = await nats.connect(nats_server.url)
    await client.subscribe("events.websocket.>", cb=events.on_message)
    await client.flush()
    yield events
    await client.close()


def viewport_around(lat: float, long: float) -> dict[str, dict[str, float]]:
    return {"swLocation": {"lat": lat - 0.1, "long": long - 0.1}, "neLocation": {"lat": lat + 0.1, "long": long + 0.1}}


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_silent_vendor_goes_away_then_offline(realtime: Realtime, bus: BusEvents) -> None:
    owner, watcher = await realtime.account(), await realtime.account()
    vendor_id = await realtime.vendor(owner)
    lat, long = unique_area()
    vendor = await realtime.connect("/vendor", owner)
    user = await realtime.connect("/user", watcher)
    try:
        await vendor.call("updateVendorLocation", {"vendorId": vendor_id, "lat": lat, "long": long})
        connected = await bus.wait_for("websocket.vendor.connected", "vendorId", vendor_id)
        assert connected["data"]["socketId"] and connected["version"] == 1
        assert await realtime.websocket.presence.state(vendor_id) is State.ONLINE
        await user.emit("updateUserLocation", viewport_around(lat, long))
        assert len(await user.next("vendor_channels")) == 1

        await _until(lambda: realtime.websocket.presence.state(vendor_id), State.AWAY, within=3)
        assert metric("venta_websocket_vendor_presence", state="away") >= 1
        assert await user.nothing("vendor_disconnect", within=0.2) is None

        assert await user.next("vendor_disconnect", wait_s=5) == {"id": vendor_id}
        gone = await bus.wait_for("websocket.vendor.disconnected", "vendorId", vendor_id)
        assert gone["data"]["affectedUsers"] == [watcher.user_id]
        assert await realtime.websocket.presence.state(vendor_id) is State.OFFLINE
        assert vendor_id not in await realtime.vendors_in(lat - 1, long - 1, lat + 1, long + 1)
        assert vendor.connected  # silence costs presence, not the connection

        # a sign of life brings it back (and announces it again)
        bus.received.clear()
        await vendor.call("updateVendorLocation", {"vendorId": vendor_id, "lat": lat, "long": long})
        await bus.wait_for("websocket.vendor.connected", "vendorId", vendor_id)
        assert await realtime.websocket.presence.state(vendor_id) is State.ONLINE
    finally:
        await vendor.close()
        await user.close()


async def test_heartbeats_keep_a_still_vendor_online(realtime: Realtime) -> None:
    owner, watcher = await realtime.account(), await realtime.account()
    vendor_id = await realtime.vendor(owner)
    lat, long = unique_area()
    vendor = await realtime.connect("/vendor", owner)
    user = await realtime.connect("/user", watcher)
    try:
        await vendor.call("updateVendorLocation", {"vendorId": vendor_id, "lat": lat, "long": long})
        await user.emit("updateUserLocation", viewport_around(lat, long))
        await user.next("vendor_channels")
        for _ in range(8):  # 4 s: past both the AWAY (1 s) and OFFLINE (2.5 s) timings
            assert await vendor.call("heartbeat") == {"ok": True, "vendors": [vendor_id]}
            await asyncio.sleep(0.5)
            assert await realtime.websocket.presence.state(vendor_id) is State.ONLINE
        assert user.drain("vendor_disconnect") == []
    finally:
        await vendor.close()
        await user.close()


async def test_disconnects_are_announced_at_once(realtime: Realtime, bus: BusEvents) -> None:
    owner, watcher = await realtime.account(), await realtime.account()
    vendor_id = await realtime.vendor(owner)
    lat, long = unique_area()
    vendor = await realtime.connect("/vendor", owner)
    user = await realtime.connect("/user", watcher)
    try:
        await vendor.call("register-vendor", {"vendorId": vendor_id})
        await vendor.call("updateVendorLocation", {"vendorId": vendor_id, "lat": lat, "long": long})
        await user.emit("updateUserLocation", viewport_around(lat, long))
        await user.next("vendor_channels")
        await bus.wait_for("websocket.user.connected", "userId", watcher.user_id)

        await vendor.close()
        assert await user.next("vendor_disconnect", wait_s=2) == {"id": vendor_id}  # well before the 2.5 s timeout
        gone = await bus.wait_for("websocket.vendor.disconnected", "vendorId", vendor_id)
        assert gone["data"]["affectedUsers"] == [watcher.user_id]
        assert vendor_id not in await realtime.vendors_in(lat - 1, long - 1, lat + 1, long + 1)
    finally:
        await user.close()
    left = await bus.wait_for("websocket.user.disconnected", "userId", watcher.user_id)
    assert uuid.UUID(left["messageId"])


async def test_rate_limits_answer_with_an_error_not_a_disconnect(realtime: Realtime) -> None:
    hosts = realtime.hosts
    settings = hosts.websocket_settings(users=realtime.users, location=realtime.location, identity=realtime.identity,
                                        socketio_channel=f"limits-{uuid.uuid4().hex[:8]}")
    assert (settings.user_location_limit, settings.vendor_location_limit) == (15, 30)  # SPEC's defaults
    limited = await hosts.start_websocket(settings)
    owner, watcher = await realtime.account(), await realtime.account()
    vendor_id = await realtime.vendor(owner)
    lat, long = unique_area()
    vendor = await realtime.connect("/vendor", owner, url=limited.url)
    user = await realtime.connect("/user", watcher, url=limited.url)
    before = metric("venta_rate_limit_rejections_total", service="websocket", route="updateVendorLocation")
    try:
        for step in range(30):
            answer = await vendor.call("updateVendorLocation", {"vendorId": vendor_id, "lat": lat + step / 1e4,
                                                                "long": long})
            assert answer["ok"] is True, (step, answer)
        refused = await vendor.call("updateVendorLocation", {"vendorId": vendor_id, "lat": lat, "long": long})
        assert refused["code"] == "RATE_LIMITED" and "30 per 60 s" in refused["message"]
        assert (await vendor.next("error"))["code"] == "RATE_LIMITED"
        assert vendor.connected
        assert await realtime.vendors_in(lat - 0.1, long - 0.1, lat + 0.1, long + 0.1) == {
            vendor_id: (lat + 29 / 1e4, long)}  # the refused update did not move it
        after = metric("venta_rate_limit_rejections_total", service="websocket", route="updateVendorLocation")
        assert after == before + 1

        for _ in range(15):
            assert (await user.call("updateUserLocation", viewport_around(lat, long)))["ok"] is True
        refused = await user.call("updateUserLocation", viewport_around(lat, long))
        assert refused["code"] == "RATE_LIMITED" and "15 per 60 s" in refused["message"]
        assert user.connected
        # heartbeats and registrations are not limited: a limited vendor still counts as alive
        assert (await vendor.call("heartbeat"))["ok"] is True
    finally:
        await vendor.close()
        await user.close()
        await limited.stop()


async def _until(probe: Any, expected: Any, *, within: float) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await probe()
        if value == expected:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still {value!r} after {within} s, expected {expected!r}")
        await asyncio.sleep(0.05)
