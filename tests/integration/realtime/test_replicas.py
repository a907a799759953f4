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

import pytest

from services.devkit.servers import Nats, Redis
from tests.support.realtime import BusEvents, Realtime
from tests.support.service_process import ServiceProcess

PRESENCE = {
    "VENTA_PRESENCE_AWAY_AFTER_S": "1",
    "VENTA_PRESENCE_OFFLINE_AFTER_S": "3",
    "VENTA_PRESENCE_SWEEP_INTERVAL_S": "0.2",
}


@pytest.fixture
async def replicas(
    realtime: Realtime, redis_server: Redis, nats_server: Nats, tmp_path: Path
) -> AsyncIterator[tuple[ServiceProcess, ServiceProcess]]:
    env = {
        "VENTA_REDIS_URL": redis_server.url,
        "VENTA_NATS_URL": nats_server.url,
        "VENTA_AUTH_ISSUER": realtime.identity.url,
        "VENTA_JWKS_MIN_REFRESH_INTERVAL_S": "1",
        "VENTA_USERS_ADDR": f"127.0.0.1:{realtime.users.grpc_port}",
        "VENTA_LOCATION_ADDR": f"127.0.0.1:{realtime.location.grpc_port}",
        "VENTA_SOCKETIO_CHANNEL": f"replicas-{uuid.uuid4().hex[:8]}",
        **PRESENCE,
    }
    pair = (ServiceProcess("websocket", env, tmp_path / "a.log"), ServiceProcess("websocket", env, tmp_path / "b.log"))
    for replica in pair:
        replica.start()
    try:
        await asyncio.gather(*(replica.wait_ready() for replica in pair))
        yield pair
    finally:
        for replica in pair:
            await asyncio.to_thread(replica.stop)


def url_of(replica: ServiceProcess) -> str:
    return f"http://127.0.0.1:{replica.http_port}"


async def test_a_user_on_one_replica_sees_a_vendor_on_the_other(
    realtime: Realtime, replicas: tuple[ServiceProcess, ServiceProcess]
) -> None:
    a, b = replicas
    async with realtime.watching(vendor_url=url_of(b), user_url=url_of(a)) as s:
        for step in range(1, 6):
            await s.vendor.emit(
                "updateVendorLocation", {"vendorId": s.vendor_id, "lat": s.lat + step / 1e3, "long": s.long}
            )
        moves = [(await s.user.next("vendor_sync"))["location"]["lat"] for _ in range(5)]
        assert moves == [s.lat + step / 1e3 for step in range(1, 6)]


async def test_restarting_the_users_replica_keeps_its_rooms(
    realtime: Realtime, replicas: tuple[ServiceProcess, ServiceProcess]
) -> None:
    a, b = replicas
    async with realtime.watching(vendor_url=url_of(b), user_url=url_of(a)) as s:
        async with s.heartbeats():  # the vendor (on B) stays online however long A takes to come back
            await asyncio.to_thread(a.stop)  # SIGTERM: the replica drains and closes its sockets
            await asyncio.wait_for(s.user.disconnected.wait(), 10)
            a.start()
            await a.wait_ready()
        s.user = await realtime.connect("/user", s.watcher, url=url_of(a))  # the app reconnects, sends nothing else
        assert [c["id"] for c in await s.user.next("vendor_channels")] == [s.vendor_id]  # its viewport, restored
        await s.move(s.lat + 0.001)
        assert (await s.user.next("vendor_sync"))["location"] == {"lat": s.lat + 0.001, "long": s.long}
        assert s.user.drain("vendor_disconnect") == []


async def test_a_killed_vendor_replica_costs_no_presence(
    realtime: Realtime, replicas: tuple[ServiceProcess, ServiceProcess], bus: BusEvents
) -> None:
    a, b = replicas
    async with realtime.watching(vendor_url=url_of(b), user_url=url_of(a)) as s:
        await asyncio.to_thread(b.kill)  # SIGKILL: no clean-up at all
        await asyncio.wait_for(s.vendor.disconnected.wait(), 30)
        s.vendor = await realtime.connect("/vendor", s.owner, url=url_of(a))  # the vendor's app reconnects elsewhere
        await s.move(s.lat + 0.002)
        assert (await s.user.next("vendor_sync"))["location"]["lat"] == s.lat + 0.002
        assert s.user.drain("vendor_disconnect") == []
        assert bus.of("websocket.vendor.disconnected", "vendorId", s.vendor_id) == []

        b.start()
        await b.wait_ready()
        # now the vendor really goes quiet: both replicas sweep, the watcher is told once, the bus hears it once
        assert await s.user.next("vendor_disconnect", wait_s=10) == {"id": s.vendor_id}
        await bus.wait_for("websocket.vendor.disconnected", "vendorId", s.vendor_id)
        await s.user.nothing("vendor_disconnect", within=1.5)
        gone = bus.of("websocket.vendor.disconnected", "vendorId", s.vendor_id)
        assert len(gone) == 1 and gone[0]["data"]["affectedUsers"] == [s.watcher.user_id]
