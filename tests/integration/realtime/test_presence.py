"""Presence (ONLINE -> AWAY -> OFFLINE), what watchers and the bus are told, and the per-socket rate limits.

The module's gateway runs with AWAY after 1 s and OFFLINE after 2.5 s; the `websocket.*` events are read from NATS
by a plain subscriber, as any consumer of the bus would.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from prometheus_client import REGISTRY

from services.websocket.presence import State
from tests.support.realtime import BusEvents, Realtime, unique_area, viewport_around


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_silent_vendor_goes_away_then_offline(realtime: Realtime, bus: BusEvents) -> None:
    async with realtime.watching() as s:
        connected = await bus.wait_for("websocket.vendor.connected", "vendorId", s.vendor_id)
        assert connected["data"]["socketId"] and connected["version"] == 1
        assert await realtime.websocket.presence.state(s.vendor_id) is State.ONLINE

        await _until(lambda: realtime.websocket.presence.state(s.vendor_id), State.AWAY, within=3)
        assert metric("venta_websocket_vendor_presence", state="away") >= 1
        await s.user.nothing("vendor_disconnect", within=0.2)

        assert await s.user.next("vendor_disconnect", wait_s=5) == {"id": s.vendor_id}
        gone = await bus.wait_for("websocket.vendor.disconnected", "vendorId", s.vendor_id)
        assert gone["data"]["affectedUsers"] == [s.watcher.user_id]
        assert await realtime.websocket.presence.state(s.vendor_id) is State.OFFLINE
        assert s.vendor_id not in await realtime.vendors_in(s.lat - 1, s.long - 1, s.lat + 1, s.long + 1)
        assert s.vendor.connected  # silence costs presence, not the connection

        # a sign of life brings it back (and announces it again)
        bus.received.clear()
        await s.move(s.lat)
        await bus.wait_for("websocket.vendor.connected", "vendorId", s.vendor_id)
        assert await realtime.websocket.presence.state(s.vendor_id) is State.ONLINE


async def test_heartbeats_keep_a_still_vendor_online(realtime: Realtime) -> None:
    async with realtime.watching() as s:
        for _ in range(8):  # 4 s: past both the AWAY (1 s) and OFFLINE (2.5 s) timings
            assert await s.vendor.call("heartbeat") == {"ok": True, "vendors": [s.vendor_id]}
            await asyncio.sleep(0.5)
            assert await realtime.websocket.presence.state(s.vendor_id) is State.ONLINE
        assert s.user.drain("vendor_disconnect") == []


async def test_disconnects_are_announced_at_once(realtime: Realtime, bus: BusEvents) -> None:
    async with realtime.watching() as s:
        await bus.wait_for("websocket.user.connected", "userId", s.watcher.user_id)
        await s.vendor.close()
        assert await s.user.next("vendor_disconnect", wait_s=2) == {"id": s.vendor_id}  # well before 2.5 s
        gone = await bus.wait_for("websocket.vendor.disconnected", "vendorId", s.vendor_id)
        assert gone["data"]["affectedUsers"] == [s.watcher.user_id]
        assert s.vendor_id not in await realtime.vendors_in(s.lat - 1, s.long - 1, s.lat + 1, s.long + 1)
    left = await bus.wait_for("websocket.user.disconnected", "userId", s.watcher.user_id)
    assert uuid.UUID(left["messageId"])


async def test_rate_limits_answer_with_an_error_not_a_disconnect(realtime: Realtime) -> None:
    hosts = realtime.hosts
    settings = hosts.websocket_settings(
        vendors=realtime.vendors,
        users=realtime.users,
        location=realtime.location,
        identity=realtime.identity,
        socketio_channel=f"limits-{uuid.uuid4().hex[:8]}",
    )
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
            answer = await vendor.call(
                "updateVendorLocation", {"vendorId": vendor_id, "lat": lat + step / 1e4, "long": long}
            )
            assert answer["ok"] is True, (step, answer)
        refused = await vendor.call("updateVendorLocation", {"vendorId": vendor_id, "lat": lat, "long": long})
        assert refused["code"] == "RATE_LIMITED" and "30 per 60 s" in refused["message"]
        assert (await vendor.next("error"))["code"] == "RATE_LIMITED"
        assert vendor.connected
        assert await realtime.vendors_in(lat - 0.1, long - 0.1, lat + 0.1, long + 0.1) == {
            vendor_id: (lat + 29 / 1e4, long)
        }  # the refused update did not move it
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
