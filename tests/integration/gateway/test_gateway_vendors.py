"""Vendor routes end to end over HTTP: create, read (cached), update, delete, ownership, aliases."""

from __future__ import annotations

import uuid

import httpx

from tests.support.envelopes import assert_envelope
from tests.support.platform_hosts import Platform


async def test_vendor_lifecycle_through_v1(api: httpx.AsyncClient, platform: Platform) -> None:
    owner = await platform.auth()
    created = await api.post("/v1/vendors", json={"name": "Tacos El Rey", "email": "rey@tacos.mx"}, headers=owner)
    assert created.status_code == 201, created.text
    vendor_id = created.json()["id"]

    got = await api.get(f"/v1/vendors/{vendor_id}", headers=owner)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["name"] == "Tacos El Rey" and body["email"] == "rey@tacos.mx" and body["open"] is False
    assert set(body) >= {
        "id",
        "lat",
        "long",
        "name",
        "description",
        "phone",
        "email",
        "website",
        "open",
        "primaryImage",
        "createdAt",
        "updatedAt",
    }

    changed = await api.patch(f"/v1/vendors/{vendor_id}", json={"name": "Tacos II", "email": None}, headers=owner)
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"message": "Vendor updated", "success": True}
    body = (await api.get(f"/v1/vendors/{vendor_id}", headers=owner)).json()
    assert (body["name"], body["email"]) == ("Tacos II", None)  # the cache was invalidated by the write

    deleted = await api.delete(f"/v1/vendors/{vendor_id}", headers=owner)
    assert deleted.status_code == 200, deleted.text
    assert_envelope(await api.get(f"/v1/vendors/{vendor_id}", headers=owner), 404, "NOT_FOUND", "NOT_FOUND")


async def test_original_paths_are_aliases(api: httpx.AsyncClient, platform: Platform) -> None:
    owner = await platform.auth()
    created = await api.post(
        "/vendor", json={"name": "Old Client Cart", "imageUrl": "https://img.example/1.png"}, headers=owner
    )
    assert created.status_code == 201, created.text
    vendor_id = created.json()["id"]
    got = await api.get(f"/vendor/{vendor_id}", headers=owner)
    assert got.status_code == 200 and got.json()["primaryImage"] == "https://img.example/1.png"
    put = await api.put(f"/vendor/{vendor_id}", json={"description": "since 1999"}, headers=owner)
    assert put.status_code == 200, put.text
    assert (await api.get(f"/v1/vendors/{vendor_id}", headers=owner)).json()["description"] == "since 1999"
    mine = await api.get("/user/vendors", headers=owner)
    assert mine.status_code == 200 and mine.json() == {"vendors": [{"id": vendor_id, "name": "Old Client Cart"}]}
    assert (await api.get("/v1/users/me/vendors", headers=owner)).json() == mine.json()


async def test_only_the_owner_may_change_or_delete(api: httpx.AsyncClient, platform: Platform) -> None:
    owner, stranger = await platform.auth(), await platform.auth()
    vendor_id = (await api.post("/v1/vendors", json={"name": "Mine"}, headers=owner)).json()["id"]
    for method in ("PUT", "PATCH"):
        answer = await api.request(method, f"/v1/vendors/{vendor_id}", json={"name": "Stolen"}, headers=stranger)
        assert_envelope(answer, 403, "AUTHORIZATION", "PERMISSION_DENIED")
    assert_envelope(await api.delete(f"/v1/vendors/{vendor_id}", headers=stranger), 403, "AUTHORIZATION")
    got = await api.get(f"/v1/vendors/{vendor_id}", headers=stranger)  # anyone signed in may read
    assert got.status_code == 200 and got.json()["name"] == "Mine"


async def test_field_errors_from_the_vendor_service_name_the_field(api: httpx.AsyncClient, platform: Platform) -> None:
    owner = await platform.auth()
    answer = await api.post("/v1/vendors", json={"name": "Bad", "email": "not-an-email"}, headers=owner)
    error = assert_envelope(answer, 400, "VALIDATION", "INVALID_ARGUMENT")
    assert error["details"][0]["field"] == "email"
    answer = await api.post("/v1/vendors", json={"name": "Bad", "imageUrl": "ftp://x"}, headers=owner)
    assert assert_envelope(answer, 400, "VALIDATION")["details"][0]["field"] == "imageUrl"
    answer = await api.post("/v1/vendors", json={"name": "   "}, headers=owner)
    assert assert_envelope(answer, 400, "VALIDATION")["details"][0]["field"] == "name"


async def test_reads_are_cached_and_writes_invalidate(api: httpx.AsyncClient, platform: Platform) -> None:
    import redis.asyncio

    from services.gateway.cache import PREFIX

    owner = await platform.auth()
    vendor_id = (await api.post("/v1/vendors", json={"name": "Cached"}, headers=owner)).json()["id"]
    cache = redis.asyncio.Redis.from_url(platform.redis_url, decode_responses=True)
    try:
        assert await cache.get(PREFIX + vendor_id) is None
        first = await api.get(f"/v1/vendors/{vendor_id}", headers=owner)
        assert await cache.get(PREFIX + vendor_id) == first.text
        assert 0 < await cache.ttl(PREFIX + vendor_id) <= platform.settings.vendor_cache_ttl_s
        # a cached answer is served without asking the vendor service: prove it by changing the row behind its back
        await cache.set(PREFIX + vendor_id, first.text.replace("Cached", "From cache"))
        assert (await api.get(f"/v1/vendors/{vendor_id}", headers=owner)).json()["name"] == "From cache"
        await api.patch(f"/v1/vendors/{vendor_id}", json={"name": "Renamed"}, headers=owner)
        assert await cache.get(PREFIX + vendor_id) is None
        assert (await api.get(f"/v1/vendors/{vendor_id}", headers=owner)).json()["name"] == "Renamed"
        await api.delete(f"/v1/vendors/{vendor_id}", headers=owner)
        assert_envelope(await api.get(f"/v1/vendors/{vendor_id}", headers=owner), 404, "NOT_FOUND")
    finally:
        await cache.aclose()


async def test_nearby_vendors_from_the_location_service(api: httpx.AsyncClient, platform: Platform) -> None:
    import grpc

    from services.contracts.venta.location.v1 import location_pb2, location_pb2_grpc

    vendor_id = str(uuid.uuid4())
    async with grpc.aio.insecure_channel(f"127.0.0.1:{platform.location.grpc_port}") as channel:
        stub = location_pb2_grpc.LocationServiceStub(channel)
        await stub.UpdateVendorLocation(
            location_pb2.LocationUpdate(entity_id=vendor_id, location=location_pb2.Location(lat=19.4326, long=-99.1332))
        )
    auth = await platform.auth()
    inside = await api.get("/v1/vendors/nearby", params={"sw": "19.40,-99.20", "ne": "19.45,-99.10"}, headers=auth)
    assert inside.status_code == 200, inside.text
    assert {"id": vendor_id, "location": {"lat": 19.4326, "long": -99.1332}} in inside.json()["vendors"]
    outside = await api.get("/v1/vendors/nearby", params={"sw": "40,-4", "ne": "41,-3"}, headers=auth)
    assert all(v["id"] != vendor_id for v in outside.json()["vendors"])
    for sw, ne in (("91,0", "92,1"), ("a,b", "1,1"), ("1", "2,2"), ("1,1", "nan,1"), ("2,2", "1,1")):
        answer = await api.get("/v1/vendors/nearby", params={"sw": sw, "ne": ne}, headers=auth)
        error = assert_envelope(answer, 400, "VALIDATION")
        assert error["details"][0]["field"] in {"sw", "ne"}, error


async def test_changes_made_elsewhere_reach_the_cache_through_vendor_events(
    api: httpx.AsyncClient, platform: Platform
) -> None:
    """An update that bypasses the gateway (straight to the vendor service) invalidates the cached read via the
    outbox -> JetStream -> `vendor.updated` -> the gateway's consumer."""
    import asyncio
    import time

    import grpc

    from services.contracts.venta.vendor.v1 import vendor_pb2, vendor_pb2_grpc

    invalidator = platform.gateway.app.state.resources.invalidator  # type: ignore[attr-defined]
    await asyncio.wait_for(invalidator.subscribed.wait(), 30)
    owner = await platform.auth()
    vendor_id = (await api.post("/v1/vendors", json={"name": "Before"}, headers=owner)).json()["id"]
    assert (await api.get(f"/v1/vendors/{vendor_id}", headers=owner)).json()["name"] == "Before"  # now cached
    owner_id = (await api.get(f"/v1/vendors/{vendor_id}", headers=owner)).json()["ownerId"]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{platform.vendors.grpc_port}") as channel:
        stub = vendor_pb2_grpc.VendorServiceStub(channel)
        await stub.UpdateVendor(vendor_pb2.VendorUpdateData(id=vendor_id, user_id=owner_id, name="After"))
    deadline = time.monotonic() + 20
    while (await api.get(f"/v1/vendors/{vendor_id}", headers=owner)).json()["name"] != "After":
        assert time.monotonic() < deadline, "the cached vendor was never invalidated by vendor.updated"
        await asyncio.sleep(0.1)
