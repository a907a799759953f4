"""Two Socket.IO gateway replicas as real processes (`venta serve websocket`) sharing one Redis.

A user on one replica sees a vendor on the other move; a replica killed or restarted loses no room and no presence:
its clients reconnect (to either replica) and carry on, and a vendor that really went quiet is announced OFFLINE
exactly once even though both replicas sweep.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from service_process import ServiceProcess

from services.kit.embedded import Nats, Redis

from .conftest import Realtime, unique_area
from .test_presence import BusEvents, viewport_around

PRESENCE = {"VENTA_PRESENCE_AWAY_AFTER_S": "1", "VENTA_PRESENCE_OFFLINE_AFTER_S": "3",
            "VENTA_PRESENCE_SWEEP_INTERVAL_S": "0.2"}


@pytest.fixture
async def replicas(realtime: Realtime, redis_server: Redis, nats_server: Nats,
                   tmp_path: Path) -> AsyncIterator[tuple[ServiceProcess, ServiceProcess]]:
    env = {
        "VENTA_REDIS_URL": redis_server.url, "VENTA_NATS_URL": nats_server.url,
        "VENTA_AUTH_ISSUER": realtime.identity.url, "VENTA_JWKS_MIN_REFRESH_INTERVAL_S": "1",
        "VENTA_USERS_ADDR": f"127.0.0.1:{realtime.users.grpc_port}",
        "VENTA_LOCATION_ADDR": f"127.0.0.1:{realtime.location.grpc_port}",
        "VENTA_SOCKETIO_CHANNEL": f"replicas-{uuid.uuid4().hex[:8]}", **PRESENCE,
    }
    pair = (ServiceProcess("websocket", env, tmp_path / "a.log"), ServiceProcess("websocket", env, tmp_path / "b.log"))
    for replica in pair:
        replica.start()
    try:
        await asyncio.gather(*(replica.wait_ready() for replica in pair))
        yield pair
    finally:
        for replica in pair:
            replica.stop()


def url_of(replica: ServiceProcess) -> str:
    return f"http://127.0.0.1:{replica.http_port}"


@pytest.fixture
async def bus(nats_server: Nats) -> AsyncIterator[BusEvents]:
    events = BusEvents()
    client = await nats.connect(nats_server.url)
    await client.subscribe("events.websocket.>", cb=events.on_message)
    await client.flush()
    yield events
    await client.close()


async def test_a_user_on_one_replica_sees_a_vendor_on_the_other(
    realtime: Realtime, replicas: tuple[ServiceProcess, ServiceProcess]
) -> None:
    a, b = replicas
    owner, watcher = await realtime.account(), await realtime.account()
    vendor_id = await realtime.vendor(owner)
    lat, long = unique_area()
    vendor = await realtime.connect("/vendor", owner, url=url_of(b))
    user = await realtime.connect("/user", watcher, url=url_of(a))
    try:
        await vendor.call("updateVendorLocation", {"vendorId": vendor_id, "lat": lat, "long": long})
        await user.emit("updateUserLocation", viewport_around(lat, long))
        assert [c["id"] for c in await user.next("vendor_channels")] == [vendor_id]
        for step in range(1, 6):
            await vendor.emit("updateVendorLocation", {"vendorId": vendor_id, "lat": lat + step / 1e3, "long": long})
        moves = [(await user.next("vendor_sync"))["location"]["lat"] for _ in range(5)]
        assert moves == [lat + step / 1e3 for step in range(1, 6)]
    finally:
        await vendor.close()
        await user.close()


async def test_restarting_the_users_replica_keeps_its_rooms(
    realtime: Realtime, replicas: tuple[ServiceProcess, ServiceProcess]
) -> None:
    a, b = replicas
    owner, watcher = await realtime.account(), await realtime.account()
    vendor_id = await realtime.vendor(owner)
    lat, long = unique_area()
    vendor = await realtime.connect("/vendor", owner, url=url_of(b))
    user = await realtime.connect("/user", watcher, url=url_of(a))
    try:
        await vendor.call("updateVendorLocation", {"vendorId": vendor_id, "lat": lat, "long": long})
        await user.emit("updateUserLocation", viewport_around(lat, long))
        await user.next("vendor_channels")

        a.stop()  # SIGTERM: the replica drains and closes its sockets
        await asyncio.wait_for(user.disconnected.wait(), 10)
        a.start()
        await a.wait_ready()
        user = await realtime.connect("/user", watcher, url=url_of(a))  # the app reconnects, sends nothing else
        assert [c["id"] for c in await user.next("vendor_channels")] == [vendor_id]  # its viewport, restored
        await vendor.emit("updateVendorLocation", {"vendorId": vendor_id, "lat": lat + 0.001, "long": long})
        assert (await user.next("vendor_sync"))["location"] == {"lat": lat + 0.001, "long": long}
        assert user.drain("vendor_disconnect") == []
    finally:
        await vendor.close()
        await user.close()


async def test_a_killed_vendor_replica_costs_no_presence(
    realtime: Realtime, replicas: tuple[ServiceProcess, ServiceProcess], bus: BusEvents
) -> None:
    a, b = replicas
    owner, watcher = await realtime.account(), await realtime.account()
    vendor_id = await realtime.vendor(owner)
    lat, long = unique_area()
    vendor = await realtime.connect("/vendor", owner, url=url_of(b))
    user = await realtime.connect("/user", watcher, url=url_of(a))
    try:
        await vendor.call("updateVendorLocation", {"vendorId": vendor_id, "lat": lat, "long": long})
        await user.emit("updateUserLocation", viewport_around(lat, long))
        await user.next("vendor_channels")

        b.kill()  # SIGKILL: no clean-up at all
        await asyncio.wait_for(vendor.disconnected.wait(), 30)
        vendor = await realtime.connect("/vendor", owner, url=url_of(a))  # the vendor's app reconnects elsewhere
        await vendor.call("updateVendorLocation", {"vendorId": vendor_id, "lat": lat + 0.002, "long": long})
        assert (await user.next("vendor_sync"))["location"]["lat"] == lat + 0.002
        assert user.drain("vendor_disconnect") == []
        assert [e for e in bus.received if e["type"] == "websocket.vendor.disconnected"
                and e["data"]["vendorId"] == vendor_id] == []

        b.start()
        await b.wait_ready()
        # now the vendor really goes quiet: both replicas sweep, the watcher is told once, the bus hears it once
        assert await user.next("vendor_disconnect", wait_s=10) == {"id": vendor_id}
        await bus.wait_for("websocket.vendor.disconnected", "vendorId", vendor_id)
        await user.nothing("vendor_disconnect", within=1.5)
        gone = [e for e in bus.received
                if e["type"] == "websocket.vendor.disconnected" and e["data"]["vendorId"] == vendor_id]
        assert len(gone) == 1 and gone[0]["data"]["affectedUsers"] == [watcher.user_id]
    finally:
        await vendor.close()
        await user.close()
