"""A vendor's live moves reach its record and the search index; the owner opens and closes it over HTTP and socket.

Everything goes through the public surfaces a mobile app uses: the vendor socket moves the vendor and opens it, the
HTTP gateway opens it and searches; the record is read over gRPC, the events as any bus consumer sees them.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import nats
import pytest

from services.contracts.venta.vendor.v1 import vendor_pb2, vendor_pb2_grpc
from services.websocket.app import WebsocketHost
from tests.support.envelopes import assert_envelope
from tests.support.realtime import Account, Realtime, unique_area

RECORD_INTERVAL_S = 0.5


@dataclass
class Moving:
    realtime: Realtime
    websocket: WebsocketHost
    api: httpx.AsyncClient
    located: list[dict[str, Any]]  # every vendor.location.updated seen on the bus

    def located_for(self, vendor_id: str) -> list[dict[str, Any]]:
        return [e["data"] for e in self.located if e["data"]["vendorId"] == vendor_id]

    async def record(self, vendor_id: str) -> vendor_pb2.Vendor:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.realtime.vendors.grpc_port}") as channel:
            answer = await vendor_pb2_grpc.VendorServiceStub(channel).GetVendorById(
                vendor_pb2.VendorLookupByIdData(id=vendor_id)
            )
        return answer.vendor

    async def search(self, account: Account, lat: float, long: float, **params: Any) -> set[str]:
        query = {"lat": lat, "lng": long, "radius": 500, **params}
        response = await self.api.get(
            "/v1/vendors/search", params=query, headers={"Authorization": f"Bearer {account.token}"}
        )
        assert response.status_code == 200, response.text
        return {hit["id"] for hit in response.json()["hits"]}

    async def found_within(self, account: Account, lat: float, long: float, vendor_id: str, wait_s: float) -> float:
        """Seconds until an open-vendor search around (lat, long) finds `vendor_id`; fails after `wait_s`."""
        started = time.monotonic()
        while vendor_id not in await self.search(account, lat, long, open="true"):
            assert time.monotonic() - started < wait_s, f"{vendor_id} not found near {lat},{long} in {wait_s} s"
            await asyncio.sleep(0.05)
        return time.monotonic() - started


@pytest.fixture(scope="module")
async def moving(realtime: Realtime, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Moving]:
    hosts = realtime.hosts
    await hosts.start_search_sync()
    gateway = await realtime.start_gateway(tmp_path_factory.mktemp("uploads"))
    websocket = await hosts.start_websocket(
        hosts.websocket_settings(
            vendors=realtime.vendors,
            users=realtime.users,
            location=realtime.location,
            identity=realtime.identity,
            socketio_channel=f"positions-{uuid.uuid4().hex[:8]}",
            vendor_record_interval_s=RECORD_INTERVAL_S,
        )
    )
    located: list[dict[str, Any]] = []

    async def seen(message: Any) -> None:
        located.append(json.loads(message.data))

    bus = await nats.connect(hosts.nats.url)
    await bus.subscribe("events.vendor.location.updated", cb=seen)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=10) as api:
        yield Moving(realtime, websocket, api, located)
    await bus.close()


async def _vendor_socket(moving: Moving, owner: Account, vendor_id: str) -> Any:
    socket = await moving.realtime.connect("/vendor", owner, url=moving.websocket.url)
    assert (await socket.call("register-vendor", {"vendorId": vendor_id}))["ok"] is True
    return socket


async def test_a_vendor_moving_on_the_live_map_is_found_by_an_open_geo_search(moving: Moving, tmp_path: Path) -> None:
    owner, searcher = await moving.realtime.account(), await moving.realtime.account()
    vendor_id = await moving.realtime.vendor(owner, name="Moving Tacos")
    opened = await moving.api.put(
        f"/v1/vendors/{vendor_id}/open", json={"open": True}, headers={"Authorization": f"Bearer {owner.token}"}
    )
    assert opened.status_code == 200, opened.text
    lat, long = unique_area()
    socket = await _vendor_socket(moving, owner, vendor_id)
    try:
        assert (await socket.call("updateVendorLocation", {"vendorId": vendor_id, "lat": lat, "long": long}))["ok"]
        took = await moving.found_within(searcher, lat, long, vendor_id, wait_s=2.0)
        print(f"moved -> found by an open geo search in {took * 1000:.0f} ms")
        record = await moving.record(vendor_id)
        assert (record.lat, record.long, record.open) == (lat, long, True)

        # a burst of moves: throttled writes, and the last position is the one recorded and searchable
        moves = [(lat + 0.01 * step, long) for step in range(1, 11)]
        for move_lat, move_long in moves:
            answer = await socket.call(
                "updateVendorLocation", {"vendorId": vendor_id, "lat": move_lat, "long": move_long}
            )
            assert answer["ok"] is True
        last = moves[-1]
        await moving.found_within(searcher, *last, vendor_id, wait_s=RECORD_INTERVAL_S + 2.0)
        assert vendor_id not in await moving.search(searcher, lat, long, open="true")  # no longer where it was
        record = await moving.record(vendor_id)
        assert (record.lat, record.long) == last
        events = moving.located_for(vendor_id)
        assert 2 <= len(events) < 1 + len(moves), f"{len(events)} writes for {1 + len(moves)} moves"
        assert (events[-1]["location"]["lat"], events[-1]["location"]["long"]) == last

        # closed over the socket: an open search no longer finds it, an unfiltered one still does
        assert await socket.call("setVendorOpen", {"vendorId": vendor_id, "open": False}) == {
            "ok": True,
            "vendorId": vendor_id,
            "open": False,
        }
        deadline = time.monotonic() + 2.0
        while vendor_id in await moving.search(searcher, *last, open="true"):
            assert time.monotonic() < deadline, "closing did not reach the index"
            await asyncio.sleep(0.05)
        assert vendor_id in await moving.search(searcher, *last)
        assert (await moving.record(vendor_id)).open is False
    finally:
        await socket.close()


async def test_a_parked_vendor_is_not_rewritten(moving: Moving) -> None:
    owner = await moving.realtime.account()
    vendor_id = await moving.realtime.vendor(owner)
    lat, long = unique_area()
    socket = await _vendor_socket(moving, owner, vendor_id)
    try:
        for _ in range(4):  # within a metre: GPS noise of a parked truck
            await socket.call("updateVendorLocation", {"vendorId": vendor_id, "lat": lat, "long": long + 1e-6})
            await asyncio.sleep(RECORD_INTERVAL_S)
        await asyncio.sleep(RECORD_INTERVAL_S + 0.5)
        assert len(moving.located_for(vendor_id)) == 1
    finally:
        await socket.close()


async def test_opening_refuses_garbage_and_strangers_and_changes_nothing(moving: Moving) -> None:
    owner, stranger = await moving.realtime.account(), await moving.realtime.account()
    vendor_id = await moving.realtime.vendor(owner)
    url = f"/v1/vendors/{vendor_id}/open"
    as_owner = {"Authorization": f"Bearer {owner.token}"}
    for body in ({"open": "true"}, {"open": 1}, {"open": None}, {}, [True], "open"):
        response = await moving.api.put(url, json=body, headers=as_owner)
        assert_envelope(response, 400, "VALIDATION")
    assert_envelope(await moving.api.put(url, content=b"{not json", headers=as_owner), 400, "VALIDATION")
    stranger_put = await moving.api.put(url, json={"open": True}, headers={"Authorization": f"Bearer {stranger.token}"})
    assert_envelope(stranger_put, 403, "AUTHORIZATION")
    assert_envelope(await moving.api.put(url, json={"open": True}), 401, "AUTHENTICATION")
    missing = await moving.api.put(f"/v1/vendors/{uuid.uuid4()}/open", json={"open": True}, headers=as_owner)
    assert_envelope(missing, 404, "NOT_FOUND")

    socket = await _vendor_socket(moving, owner, vendor_id)
    intruder = await moving.realtime.connect("/vendor", stranger, url=moving.websocket.url)
    try:
        for payload in ({"vendorId": vendor_id, "open": "true"}, {"vendorId": "nope", "open": True}, {"open": True}, 7):
            answer = await socket.call("setVendorOpen", payload)
            assert answer["ok"] is False and answer["code"] == "INVALID_PAYLOAD", (payload, answer)
        answer = await intruder.call("setVendorOpen", {"vendorId": vendor_id, "open": True})
        assert answer["ok"] is False and answer["code"] == "FORBIDDEN", answer
        moved = await intruder.call("updateVendorLocation", {"vendorId": vendor_id, "lat": 1.0, "long": 1.0})
        assert moved["ok"] is False and moved["code"] == "FORBIDDEN", moved
    finally:
        await socket.close()
        await intruder.close()
    record = await moving.record(vendor_id)
    assert record.open is False and not record.HasField("lat")
