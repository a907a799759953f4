"""The Socket.IO gateway's test scene: accounts, vendors placed in corners of their own, sockets watching them, and
the `websocket.*` events as a bus consumer sees them. The fixtures that start the platform are in
tests/integration/realtime/conftest.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from services.contracts.venta.location.v1 import location_pb2, location_pb2_grpc
from services.contracts.venta.user.v1 import user_pb2, user_pb2_grpc
from services.contracts.venta.vendor.v1 import vendor_pb2, vendor_pb2_grpc
from services.kit.grpc.server import GrpcServiceHost
from services.kit.http.server import AsgiServiceHost
from services.websocket.app import WebsocketHost
from tests.support.platform_hosts import Hosts, mint_token, new_clerk_id
from tests.support.socket_clients import SocketClient

FAST_PRESENCE: dict[str, Any] = {
    "presence_away_after_s": 1.0,
    "presence_offline_after_s": 2.5,
    "presence_sweep_interval_s": 0.2,
}
GENEROUS_LIMITS: dict[str, Any] = {"user_location_limit": 10_000, "vendor_location_limit": 10_000}


@dataclass
class Account:
    clerk_id: str
    user_id: str
    token: str


@dataclass
class Scene:
    """A vendor on the map and a user watching it: both sockets connected, the user already in the vendor's room."""

    owner: Account
    watcher: Account
    vendor_id: str
    lat: float
    long: float
    vendor: SocketClient
    user: SocketClient

    @asynccontextmanager
    async def heartbeats(self, every_s: float = 0.5) -> AsyncIterator[None]:
        """Keep the vendor ONLINE (a still vendor's app sends heartbeats) while the block runs."""

        async def beat() -> None:
            while True:
                assert (await self.vendor.call("heartbeat"))["ok"] is True
                await asyncio.sleep(every_s)

        beating = asyncio.create_task(beat())
        try:
            yield
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating

    async def move(self, lat: float) -> dict[str, Any]:
        answer: dict[str, Any] = await self.vendor.call(
            "updateVendorLocation", {"vendorId": self.vendor_id, "lat": lat, "long": self.long}
        )
        return answer


@dataclass
class Realtime:
    hosts: Hosts
    vendors: GrpcServiceHost
    users: GrpcServiceHost
    location: GrpcServiceHost
    identity: AsgiServiceHost
    websocket: WebsocketHost

    @property
    def url(self) -> str:
        return self.websocket.url

    async def start_gateway(self, upload_dir: Path, **overrides: Any) -> AsgiServiceHost:
        """An HTTP gateway in front of this platform's services (its own upload directory; settings overridable)."""
        settings = self.hosts.gateway_settings(
            vendors=self.vendors,
            users=self.users,
            location=self.location,
            identity=self.identity,
            upload_dir=upload_dir,
            **overrides,
        )
        return await self.hosts.start_gateway(settings)

    async def account(self) -> Account:
        clerk_id = new_clerk_id()
        token = await mint_token(self.identity, clerk_id)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.users.grpc_port}") as channel:
            user = await user_pb2_grpc.UserServiceStub(channel).GetUserByClerkId(
                user_pb2.GetUserByClerkIdRequest(clerk_id=clerk_id)
            )
        return Account(clerk_id, user.id, token)

    async def vendor(self, owner: Account, name: str = "Taco Truck") -> str:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.vendors.grpc_port}") as channel:
            created = await vendor_pb2_grpc.VendorServiceStub(channel).CreateVendor(
                vendor_pb2.VendorCreateData(name=name, user_id=owner.user_id, email="t@example.com")
            )
        return str(created.id)

    async def vendors_in(self, south: float, west: float, north: float, east: float) -> dict[str, tuple[float, float]]:
        """What the location service holds (read directly, not through the gateway under test)."""
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.location.grpc_port}") as channel:
            answer = await location_pb2_grpc.LocationServiceStub(channel).VendorLocations(
                location_pb2.VendorLocationRequest(
                    sw_location=location_pb2.Location(lat=south, long=west),
                    ne_location=location_pb2.Location(lat=north, long=east),
                )
            )
        return {v.id: (v.location.lat, v.location.long) for v in answer.vendors}

    async def connect(self, namespace: str, account: Account, *, url: str | None = None) -> SocketClient:
        client = SocketClient(url or self.url, namespace)
        await client.connect(auth={"token": account.token})
        return client

    @asynccontextmanager
    async def watching(self, *, vendor_url: str | None = None, user_url: str | None = None) -> AsyncIterator[Scene]:
        """A fresh vendor placed in a corner of its own and a fresh user watching it; both sockets closed after."""
        owner, watcher = await self.account(), await self.account()
        vendor_id = await self.vendor(owner)
        lat, long = unique_area()
        scene = Scene(
            owner,
            watcher,
            vendor_id,
            lat,
            long,
            await self.connect("/vendor", owner, url=vendor_url),
            await self.connect("/user", watcher, url=user_url),
        )
        try:
            assert (await scene.move(lat))["ok"] is True
            await scene.user.emit("updateUserLocation", viewport_around(lat, long))
            assert [c["id"] for c in await scene.user.next("vendor_channels")] == [vendor_id]
            yield scene
        finally:
            await scene.vendor.close()
            await scene.user.close()


def viewport_around(lat: float, long: float) -> dict[str, dict[str, float]]:
    return {"swLocation": {"lat": lat - 0.1, "long": long - 0.1}, "neLocation": {"lat": lat + 0.1, "long": long + 0.1}}


class BusEvents:
    """The `websocket.*` events as any consumer of the bus sees them (a plain NATS subscriber)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.arrived = asyncio.Condition()

    async def on_message(self, message: Any) -> None:
        async with self.arrived:
            self.received.append(json.loads(message.data))
            self.arrived.notify_all()

    def of(self, event_type: str, key: str, value: str) -> list[dict[str, Any]]:
        return [e for e in self.received if e["type"] == event_type and e["data"].get(key) == value]

    async def wait_for(self, event_type: str, key: str, value: str, wait_s: float = 10.0) -> dict[str, Any]:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: bool(self.of(event_type, key, value))), wait_s)
        return self.of(event_type, key, value)[0]


def unique_area() -> tuple[float, float]:
    """A corner of the world no other test uses, so viewports never see another test's vendors."""
    seed = uuid.uuid4().int
    return (-60 + (seed % 12000) / 100.0, -170 + ((seed >> 20) % 34000) / 100.0)
