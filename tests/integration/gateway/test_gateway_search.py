"""Search through the gateway: a vendor created over HTTP reaches the index through the outbox, NATS and search
sync, and is found by text, around a point and by `open`; bad queries are 400s."""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
import httpx

from services.contracts.venta.vendor.v1 import vendor_pb2, vendor_pb2_grpc
from tests.support.envelopes import assert_envelope
from tests.support.platform_hosts import Platform


async def _wait_for(api: httpx.AsyncClient, params: dict[str, str], headers: dict[str, str], vendor_id: str) -> dict:
    deadline = time.monotonic() + 30
    while True:
        answer = await api.get("/v1/vendors/search", params=params, headers=headers)
        assert answer.status_code == 200, answer.text
        hits = [hit for hit in answer.json()["hits"] if hit["id"] == vendor_id]
        if hits:
            return dict(answer.json(), hit=hits[0])
        assert time.monotonic() < deadline, f"{vendor_id} never found with {params}: {answer.text}"
        await asyncio.sleep(0.2)


async def test_created_vendor_is_found_by_text_place_and_open(api: httpx.AsyncClient, platform: Platform) -> None:
    owner = await platform.auth()
    word = f"churros{uuid.uuid4().hex[:6]}"
    created = await api.post(
        "/v1/vendors", json={"name": f"Los {word.title()}", "description": "con chocolate"}, headers=owner
    )
    vendor_id = created.json()["id"]
    found = await _wait_for(api, {"q": word}, owner, vendor_id)
    assert found["hit"]["name"] == f"Los {word.title()}" and found["hit"]["open"] is False
    assert found["total"] >= 1 and found["page"] == 0
    typo = word[:-1] + ("x" if word[-1] != "x" else "y")
    await _wait_for(api, {"q": typo}, owner, vendor_id)  # typo tolerant

    owner_id = (await api.get(f"/v1/vendors/{vendor_id}", headers=owner)).json()["ownerId"]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{platform.vendors.grpc_port}") as channel:
        stub = vendor_pb2_grpc.VendorServiceStub(channel)
        await stub.SetVendorOpen(vendor_pb2.VendorOpenData(id=vendor_id, user_id=owner_id, open=True))
    await _wait_for(api, {"q": word, "open": "true"}, owner, vendor_id)

    # position: the index takes it from the vendor record's lat/long (set here straight in the index, as search
    # sync does from vendor.location.updated)
    from datetime import UTC, datetime, timedelta

    from services.search.records import MoveTo, version_of

    newer = version_of(datetime.now(UTC) + timedelta(minutes=1))
    await platform.search.apply([MoveTo(vendor_id, 19.4326, -99.1332, version=newer)])
    near = await _wait_for(api, {"q": word, "lat": "19.43", "lng": "-99.13", "radius": "2000"}, owner, vendor_id)
    assert 0 < near["hit"]["distanceM"] < 2000 and near["hit"]["lat"] == 19.4326
    far = await api.get(
        "/v1/vendors/search", params={"q": word, "lat": "40.4", "lng": "-3.7", "radius": "5000"}, headers=owner
    )
    assert all(hit["id"] != vendor_id for hit in far.json()["hits"])


async def test_search_validation(api: httpx.AsyncClient, platform: Platform) -> None:
    auth = await platform.auth()
    for params, field in (
        ({"lat": "10"}, "lng"),
        ({"lng": "10"}, "lat"),
        ({"radius": "100"}, "radius"),
        ({"lat": "95", "lng": "0"}, "lat"),
        ({"limit": "0"}, "limit"),
        ({"open": "perhaps"}, "open"),
    ):
        error = assert_envelope(await api.get("/v1/vendors/search", params=params, headers=auth), 400, "VALIDATION")
        assert error["details"][0]["field"] == field, (params, error)
    assert_envelope(await api.get("/v1/vendors/search"), 401, "AUTHENTICATION")


async def test_garbage_queries_get_an_empty_page_or_the_validation_error(
    api: httpx.AsyncClient, platform: Platform
) -> None:
    auth = await platform.auth()
    answer = await api.get("/v1/vendors/search", params={"q": "x" * 257}, headers=auth)
    assert assert_envelope(answer, 400, "VALIDATION")["details"][0]["field"] == "q"
    garbage = ["!!!", "%_%", "\\", "'; DROP TABLE search_vendor; --", "' OR '1'='1", "\x00", "タコス", "x" * 256]
    for q in [*garbage, "🌮" * 256]:  # the last is 1 KiB, over Algolia's 512-byte limit
        answer = await api.get("/v1/vendors/search", params={"q": q}, headers=auth)
        assert answer.status_code == 200, (q[:20], answer.text)
        assert (answer.json()["hits"], answer.json()["total"]) == ([], 0), q[:20]
    assert (await api.get("/v1/vendors/search", params={"q": "tacos"}, headers=auth)).status_code == 200
