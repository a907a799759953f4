"""A short workload over a running `venta up` that moves every family the dashboards and alerts read.

Through the public edges only (the HTTP gateway, the local identity provider, the Socket.IO gateway), plus two
faults a production platform meets: an undecodable message on the event stream (both vendor consumers dead-letter
it) and a peer going away (the gateway's breaker to it opens, its readiness check fails, calls get 502). Requests
are few (about 150) so the whole run takes seconds; the rate limit is reached by repetition, as a client would.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

import httpx
import nats

from services.cli.registry import SERVICES
from services.cli.token import mint
from services.cli.up import LocalPlatform
from tests.support.socket_clients import SocketClient

VIEWPORT = {"neLocation": {"lat": 40.9, "long": -73.7}, "swLocation": {"lat": 40.5, "long": -74.3}}


@dataclass
class Workload:
    platform: LocalPlatform
    sockets: list[SocketClient] = field(default_factory=list)
    vendor_id: str = ""

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{SERVICES[service].http_port + self.platform.offset}"

    async def token(self, user: str) -> str:
        return await asyncio.to_thread(mint, user, identity_url=self.url("identity"))

    async def run(self) -> None:
        """Traffic through every service, the event pipeline end to end, sockets left open."""
        owner = await self.token(f"obs-owner-{uuid.uuid4().hex[:8]}")
        fan = await self.token(f"obs-user-{uuid.uuid4().hex[:8]}")
        async with httpx.AsyncClient(
            base_url=self.url("gateway"), timeout=15, headers={"Authorization": f"Bearer {owner}"}
        ) as api:
            created = await api.post("/v1/vendors", json={"name": "Observability tacos"})
            assert created.status_code == 201, created.text
            self.vendor_id = created.json()["id"]
            for _ in range(2):  # a cache miss, then a hit
                assert (await api.get(f"/v1/vendors/{self.vendor_id}")).status_code == 200
            assert (await api.put(f"/v1/vendors/{self.vendor_id}", json={"description": "al pastor"})).is_success
            as_fan = {"Authorization": f"Bearer {fan}"}  # the watching user favourites it: notifications follow
            assert (await api.put(f"/v1/users/me/favourites/{self.vendor_id}", headers=as_fan)).status_code == 200
            for path, params in (
                ("/v1/users/me/vendors", {}),
                ("/v1/vendors/search", {"q": "tacos"}),
                ("/v1/vendors/nearby", {"sw": "40.5,-74.3", "ne": "40.9,-73.7"}),
            ):
                assert (await api.get(path, params=params)).status_code == 200, path
            statuses = [(await api.get(f"/v1/vendors/{uuid.uuid4()}")).status_code for _ in range(110)]
            assert 404 in statuses and 429 in statuses, statuses  # NOT_FOUND from vendors, then the rate limit
        await self.realtime(owner, fan)
        await self.poison_event()

    async def realtime(self, owner: str, fan: str) -> None:
        """A vendor broadcasting its position to a user watching the map, opening (a notification pushed to the user,
        whose favourite it is); a bad payload; a flood (rate limit)."""
        url = self.url("websocket")
        vendor, user = SocketClient(url, "/vendor"), SocketClient(url, "/user")
        self.sockets += [vendor, user]
        await vendor.connect(auth={"token": owner})
        await user.connect(auth={"token": fan})
        assert (await vendor.call("register-vendor", {"vendorId": self.vendor_id}))["ok"]
        position = {"vendorId": self.vendor_id, "lat": 40.7, "long": -74.0}
        assert (await vendor.call("updateVendorLocation", position))["ok"]
        assert (await user.call("updateUserLocation", VIEWPORT))["ok"]
        assert (await vendor.call("heartbeat", {}))["ok"]
        assert (await vendor.call("setVendorOpen", {"vendorId": self.vendor_id, "open": True}))["ok"]
        assert (await user.next("notification", 15))["vendorId"] == self.vendor_id
        assert not (await user.call("updateUserLocation", {"neLocation": "north"}))["ok"]  # INVALID_PAYLOAD
        await user.emit("no-such-event", {})
        answers = [await vendor.call("updateVendorLocation", position) for _ in range(40)]
        assert not all(answer["ok"] for answer in answers), "the location rate limit never refused an update"

    async def poison_event(self) -> None:
        """Bytes that are not an event, on a subject both vendor consumers read: each dead-letters them."""
        client = await nats.connect(self.platform.urls["nats"] or "")
        try:
            await client.jetstream().publish(
                "events.vendor.updated", b"not json", headers={"Nats-Msg-Id": f"obs-poison-{uuid.uuid4()}"}
            )
        finally:
            await client.close()

    async def take_down(self, service: str) -> list[int]:
        """Stop `service` and call it through the gateway until its breaker is open and refusing (502s)."""
        running = next(r for r in self.platform.running if r.entry.name == service)
        running.proc.terminate()
        await asyncio.to_thread(running.proc.wait, 30)
        owner = await self.token(f"obs-owner-{uuid.uuid4().hex[:8]}")
        async with httpx.AsyncClient(
            base_url=self.url("gateway"), timeout=15, headers={"Authorization": f"Bearer {owner}"}
        ) as api:
            statuses = [
                (await api.get("/v1/vendors/nearby", params={"sw": "40.5,-74.3", "ne": "40.9,-73.7"})).status_code
                for _ in range(12)
            ]
            ready = await api.get("/health/ready")  # the readiness check of the stopped peer fails
        assert ready.status_code == 503, ready.text
        return statuses

    async def close(self) -> None:
        for socket in self.sockets:
            await socket.close()
