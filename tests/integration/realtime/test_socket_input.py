"""Everything a client can get wrong, or an attacker can try, at the Socket.IO edge.

Each bad token gets `error {code: UNAUTHORIZED}` and a disconnect; each bad payload gets an `error` naming the
problem while the socket stays connected; nothing bad reaches the location service; and the server keeps serving a
well-behaved client the whole time.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.support import tokens
from tests.support.realtime import Realtime, unique_area
from tests.support.socket_clients import SocketClient

GOOD_ID = "6b1e5b1c-7a4e-4c43-9d0e-5d8f6a7e0f11"


def _bad_tokens(realtime: Realtime) -> dict[str, str]:
    keys = realtime.identity.app.state.keys  # type: ignore[attr-defined]
    issuer = realtime.identity.url
    now = int(time.time())
    subject = "user_never_created"
    return {
        "garbage": "not-a-jwt",
        "expired": tokens.signed(keys, tokens.claims(issuer, subject, iat=now - 7200, nbf=now - 7200, exp=now - 3600)),
        "wrong issuer": tokens.signed(keys, tokens.claims("https://evil.example", subject)),
        "wrong azp": tokens.signed(keys, tokens.claims(issuer, subject, azp="another-site")),
        "alg none": tokens.unsigned(keys, tokens.claims(issuer, subject)),
        "hs256 with the public key": tokens.hs256_with_public_key(keys, tokens.claims(issuer, subject)),
        "unknown key": tokens.foreign_key(tokens.claims(issuer, subject), kid="not-a-published-kid"),
        "no such user": tokens.signed(keys, tokens.claims(issuer, subject)),
    }


@pytest.mark.parametrize("namespace", ["/user", "/vendor"])
async def test_bad_tokens_are_told_and_disconnected(realtime: Realtime, namespace: str) -> None:
    for name, token in [*_bad_tokens(realtime).items(), ("missing", "")]:
        client = SocketClient(realtime.url, namespace)
        try:
            await client.connect(auth={"token": token} if token else None)
            error = await client.next("error")
            assert error["code"] == "UNAUTHORIZED", (name, error)
            assert error["message"], name
            await _wait_disconnected(client, name)
        finally:
            await client.close()


async def test_token_from_auth_query_or_header(realtime: Realtime) -> None:
    account = await realtime.account()
    for how in ("auth", "query", "header", "header without Bearer prefix in auth"):
        client = SocketClient(realtime.url, "/user")
        try:
            if how == "auth":
                await client.connect(auth={"token": account.token})
            elif how == "query":
                await client.connect(query=f"token={account.token}")
            elif how == "header":
                await client.connect(headers={"Authorization": f"Bearer {account.token}"})
            else:
                await client.connect(auth={"token": f"Bearer {account.token}"})
            answer = await client.call("register-user", {"userId": account.user_id})
            assert answer == {"ok": True, "userId": account.user_id}, how
        finally:
            await client.close()


async def test_a_malformed_auth_payload_is_refused(realtime: Realtime) -> None:
    for auth in ({"token": 12345}, {"token": ["a", "b"]}, {"token": "x" * 10_000}):
        client = SocketClient(realtime.url, "/vendor")
        try:
            await client.connect(auth=auth)
            assert (await client.next("error"))["code"] == "UNAUTHORIZED", auth
            await _wait_disconnected(client, str(auth)[:40])
        finally:
            await client.close()


async def _wait_disconnected(client: SocketClient, name: str) -> None:
    try:
        await asyncio.wait_for(client.disconnected.wait(), 5)
    except TimeoutError:
        pytest.fail(f"{name}: still connected")
    assert not client.connected, name


VENDOR_GARBAGE: list[tuple[str, Any, str]] = [
    ("updateVendorLocation", None, "payload must be a JSON object, not null"),
    ("updateVendorLocation", "hello", "not a string"),
    ("updateVendorLocation", [1, 2, 3], "not an array"),
    ("updateVendorLocation", 42, "not a number"),
    ("updateVendorLocation", {}, "lat: Field required"),
    ("updateVendorLocation", {"lat": 1, "long": 2}, "vendorId: Field required"),
    ("updateVendorLocation", {"lat": "12.5", "long": 2, "vendorId": GOOD_ID}, "lat: Input should be a valid number"),
    ("updateVendorLocation", {"lat": 1, "long": "east", "vendorId": GOOD_ID}, "long: Input should be"),
    ("updateVendorLocation", {"lat": True, "long": 2, "vendorId": GOOD_ID}, "lat: Input should be a valid number"),
    ("updateVendorLocation", {"lat": None, "long": 2, "vendorId": GOOD_ID}, "lat: Input should be"),
    ("updateVendorLocation", {"lat": 91, "long": 2, "vendorId": GOOD_ID}, "lat: Input should be less than or equal"),
    ("updateVendorLocation", {"lat": -90.5, "long": 2, "vendorId": GOOD_ID}, "lat: Input should be greater"),
    ("updateVendorLocation", {"lat": 1, "long": 180.01, "vendorId": GOOD_ID}, "long: Input should be less"),
    ("updateVendorLocation", {"lat": 1, "long": -181, "vendorId": GOOD_ID}, "long: Input should be greater"),
    ("updateVendorLocation", {"lat": 1e308 * 10, "long": 2, "vendorId": GOOD_ID}, "lat:"),
    ("updateVendorLocation", {"lat": 1, "long": 2, "vendorId": "not-a-uuid"}, "vendorId: must be a UUID"),
    ("updateVendorLocation", {"lat": 1, "long": 2, "vendorId": 7}, "vendorId: Input should be a valid string"),
    ("updateVendorLocation", {"lat": 1, "long": 2, "vendorId": "x" * 1000}, "vendorId: String should have at most"),
    ("updateVendorLocation", {"lat": {"$gt": 0}, "long": 2, "vendorId": GOOD_ID}, "lat: Input should be"),
    ("register-vendor", {}, "vendorId: Field required"),
    ("register-vendor", {"vendorId": "'; DROP TABLE vendor; --"}, "vendorId: must be a UUID"),
    ("register-vendor", "vendor", "not a string"),
]

USER_GARBAGE: list[tuple[str, Any, str]] = [
    ("updateUserLocation", None, "payload must be a JSON object"),
    ("updateUserLocation", {}, "neLocation: Field required"),
    ("updateUserLocation", {"neLocation": {"lat": 1, "long": 1}}, "swLocation: Field required"),
    ("updateUserLocation", {"neLocation": "1,1", "swLocation": {"lat": 0, "long": 0}}, "neLocation: Input should"),
    (
        "updateUserLocation",
        {"neLocation": {"lat": "1", "long": 1}, "swLocation": {"lat": 0, "long": 0}},
        "neLocation.lat: Input should be a valid number",
    ),
    (
        "updateUserLocation",
        {"neLocation": {"lat": 100, "long": 1}, "swLocation": {"lat": 0, "long": 0}},
        "neLocation.lat: Input should be less than or equal to 90",
    ),
    (
        "updateUserLocation",
        {"neLocation": {"lat": 1, "long": 1}, "swLocation": {"lat": 0, "long": -200}},
        "swLocation.long: Input should be greater than or equal to -180",
    ),
    (
        "updateUserLocation",
        {"neLocation": {"lat": 0, "long": 1}, "swLocation": {"lat": 1, "long": 0}},
        "swLocation.lat must not be north of neLocation.lat",
    ),
    ("register-user", {"userId": None}, "userId: Input should be a valid string"),
    ("register-user", {"userId": "someone"}, "userId: must be a UUID"),
]


@pytest.mark.parametrize(("namespace", "cases"), [("/vendor", VENDOR_GARBAGE), ("/user", USER_GARBAGE)])
async def test_garbage_payloads_get_an_error_and_change_nothing(
    realtime: Realtime, namespace: str, cases: list[tuple[str, Any, str]]
) -> None:
    account = await realtime.account()
    socket = await realtime.connect(namespace, account)
    bystander = await realtime.connect("/user", await realtime.account())
    lat, long = unique_area()
    try:
        for event, payload, expected in cases:
            answer = await socket.call(event, payload)
            assert answer["ok"] is False and answer["code"] == "INVALID_PAYLOAD", (event, payload, answer)
            assert expected in answer["message"], (event, payload, answer["message"])
            error = await socket.next("error")
            assert error == {"code": "INVALID_PAYLOAD", "message": answer["message"]}
            assert socket.connected, (event, payload)
        # unknown events are refused the same way
        answer = await socket.call("dropTables", {"please": True})
        assert answer["code"] == "INVALID_PAYLOAD" and "unknown event" in answer["message"]
        assert (await socket.next("error"))["code"] == "INVALID_PAYLOAD"
        # and the server still serves everyone, this socket included
        await bystander.emit(
            "updateUserLocation",
            {"swLocation": {"lat": lat, "long": long}, "neLocation": {"lat": lat + 0.1, "long": long + 0.1}},
        )
        assert await bystander.next("vendor_channels") == []
        assert socket.connected
    finally:
        await socket.close()
        await bystander.close()
    assert GOOD_ID not in await realtime.vendors_in(-90, -180, 90, 180)  # nothing reached the location service


async def test_huge_payloads(realtime: Realtime) -> None:
    account = await realtime.account()
    socket = await realtime.connect("/vendor", account)
    bystander = await realtime.connect("/user", await realtime.account())
    try:
        padded = {"lat": 1, "long": 2, "vendorId": GOOD_ID, "padding": "x" * 100_000}
        answer = await socket.call("updateVendorLocation", padded)
        assert answer["code"] == "PAYLOAD_TOO_LARGE" and "at most 16384" in answer["message"]
        assert socket.connected

        # beyond engine.io's message limit (1 MiB) the connection itself is closed; others are unaffected
        await socket.emit("updateVendorLocation", {"padding": "x" * (2 * 1024 * 1024)})
        await _wait_disconnected(socket, "2 MiB message")
        lat, long = unique_area()
        await bystander.emit(
            "updateUserLocation",
            {"swLocation": {"lat": lat, "long": long}, "neLocation": {"lat": lat + 0.1, "long": long + 0.1}},
        )
        assert await bystander.next("vendor_channels") == []
    finally:
        await socket.close()
        await bystander.close()
