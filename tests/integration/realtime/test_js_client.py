"""The official JavaScript client, `socket.io-client` from npm (what the mobile app is built on), against the server.

Each client is `node tests/js/driver.mjs`, a real process speaking Socket.IO v4 over a WebSocket, scripted through
JSON lines. It covers every event of SPEC section 4, the three ways of sending a token, bad tokens, another user's
vendor, and payloads only JavaScript would produce (NaN and Infinity become null, numbers as strings, 100 KB).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.support.realtime import Account, Realtime, unique_area, viewport_around

JS = Path(__file__).resolve().parents[2] / "js"


class JsClient:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.queues: dict[str, asyncio.Queue[Any]] = defaultdict(asyncio.Queue)
        self.acks: dict[int, asyncio.Future[Any]] = {}
        self.next_id = 0
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, url: str, namespace: str, mode: str, token: str = "") -> JsClient:
        node = shutil.which("node")
        assert node, "node is not on PATH"
        assert (JS / "node_modules" / "socket.io-client").is_dir(), "run ./venta test (it runs npm ci in tests/js)"
        proc = await asyncio.create_subprocess_exec(
            node,
            str(JS / "driver.mjs"),
            url,
            namespace,
            mode,
            token,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=JS,
        )
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            message = json.loads(line)
            if message["type"] == "ack":
                self.acks.pop(message["id"]).set_result(message["data"])
            elif message["type"] == "event":
                self.queues[message["event"]].put_nowait(message["data"])
            else:
                self.queues[message["type"]].put_nowait(message)

    async def send(self, command: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()

    async def emit(self, event: str, data: Any = None) -> None:
        await self.send({"emit": event, "data": data})

    async def call(self, event: str, data: Any = None) -> Any:
        self.next_id += 1
        answer = asyncio.get_running_loop().create_future()
        self.acks[self.next_id] = answer
        await self.send({"id": self.next_id, "emit": event, "data": data, "ack": True})
        return await asyncio.wait_for(answer, 10)

    async def next(self, kind: str, wait_s: float = 10.0) -> Any:
        return await asyncio.wait_for(self.queues[kind].get(), wait_s)

    async def close(self) -> None:
        if self.proc.returncode is None:
            try:
                await self.send({"close": True})
                await asyncio.wait_for(self.proc.wait(), 5)
            except (TimeoutError, ConnectionError):
                self.proc.kill()
                await self.proc.wait()
        self.reader.cancel()


async def connected(realtime: Realtime, namespace: str, account: Account, mode: str = "auth") -> JsClient:
    client = await JsClient.start(realtime.url, namespace, mode, account.token)
    assert (await client.next("connect"))["id"]
    return client


async def test_every_event_with_the_javascript_client(realtime: Realtime) -> None:
    owner, watcher = await realtime.account(), await realtime.account()
    vendor_id = await realtime.vendor(owner)
    lat, long = unique_area()
    vendor = await connected(realtime, "/vendor", owner)
    user = await connected(realtime, "/user", watcher)
    try:
        assert await user.call("register-user", {"userId": watcher.user_id}) == {"ok": True, "userId": watcher.user_id}
        assert await vendor.call("register-vendor", {"vendorId": vendor_id}) == {"ok": True, "vendorId": vendor_id}
        await vendor.emit("updateVendorLocation", {"lat": lat, "long": long, "vendorId": vendor_id})
        assert (await vendor.call("heartbeat"))["vendors"] == [vendor_id]  # after the update: ordered per socket

        await user.emit("updateUserLocation", viewport_around(lat, long))
        assert await user.next("vendor_channels") == [{"id": vendor_id, "location": {"lat": lat, "long": long}}]

        await vendor.emit("updateVendorLocation", {"lat": lat + 0.01, "long": long, "vendorId": vendor_id})
        assert await user.next("vendor_sync") == {"id": vendor_id, "location": {"lat": lat + 0.01, "long": long}}

        await vendor.close()
        assert await user.next("vendor_disconnect") == {"id": vendor_id}
    finally:
        await vendor.close()
        await user.close()


@pytest.mark.parametrize("mode", ["auth", "query", "header"])
async def test_each_way_of_sending_the_token(realtime: Realtime, mode: str) -> None:
    account = await realtime.account()
    client = await connected(realtime, "/user", account, mode)
    try:
        assert (await client.call("register-user", {"userId": account.user_id}))["ok"] is True
    finally:
        await client.close()


@pytest.mark.parametrize("namespace", ["/user", "/vendor"])
async def test_bad_tokens_get_an_error_then_a_disconnect(realtime: Realtime, namespace: str) -> None:
    for mode, token in (("auth", "garbage"), ("query", "a.b.c"), ("header", "not-a-jwt"), ("none", "")):
        client = await JsClient.start(realtime.url, namespace, mode, token)
        try:
            assert (await client.next("connect"))["id"], mode
            assert (await client.next("error"))["code"] == "UNAUTHORIZED", mode
            assert (await client.next("disconnect"))["reason"] == "io server disconnect", mode
        finally:
            await client.close()


async def test_an_oversized_header_is_refused_before_the_socket_opens(realtime: Realtime) -> None:
    client = await JsClient.start(realtime.url, "/user", "header", "x" * 20_000)
    try:
        refused = await client.next("connect_error")
        assert refused["message"], refused
        assert client.queues["connect"].empty()
    finally:
        await client.close()


JS_GARBAGE: list[tuple[str, Any, str, str]] = [
    ("updateVendorLocation", {"lat": None, "long": None, "vendorId": "V"}, "INVALID_PAYLOAD", "lat:"),  # NaN -> null
    ("updateVendorLocation", {"lat": "52.52", "long": "13.40", "vendorId": "V"}, "INVALID_PAYLOAD", "lat:"),
    ("updateVendorLocation", {"lat": 52.52, "vendorId": "V"}, "INVALID_PAYLOAD", "long: Field required"),
    ("updateVendorLocation", {"lat": 95, "long": 13.4, "vendorId": "V"}, "INVALID_PAYLOAD", "lat: Input should be"),
    ("updateVendorLocation", {"lat": [52.5], "long": 13.4, "vendorId": "V"}, "INVALID_PAYLOAD", "lat:"),
    ("updateVendorLocation", "52.52,13.40", "INVALID_PAYLOAD", "not a string"),
    (
        "updateVendorLocation",
        {"lat": 1, "long": 2, "vendorId": "V", "pad": "x" * 100_000},
        "PAYLOAD_TOO_LARGE",
        "at most",
    ),
    ("register-vendor", {"vendorId": "FOREIGN"}, "FORBIDDEN", "is not owned by this user"),
    ("register-vendor", {"vendor_id": "V"}, "INVALID_PAYLOAD", "vendorId: Field required"),
]


async def test_javascript_garbage_gets_errors_and_the_socket_stays(realtime: Realtime) -> None:
    owner, stranger = await realtime.account(), await realtime.account()
    own, foreign = await realtime.vendor(owner), await realtime.vendor(stranger)
    client = await connected(realtime, "/vendor", owner)
    try:
        for event, payload, code, words in JS_GARBAGE:
            text = json.dumps(payload).replace('"V"', json.dumps(own)).replace('"FOREIGN"', json.dumps(foreign))
            answer = await client.call(event, json.loads(text))
            assert answer["ok"] is False and answer["code"] == code, (event, payload, answer)
            assert words in answer["message"], (event, answer["message"])
            assert (await client.next("error"))["code"] == code
        lat, long = unique_area()
        assert (await client.call("updateVendorLocation", {"lat": lat, "long": long, "vendorId": own}))["ok"] is True
        assert foreign not in await realtime.vendors_in(-90, -180, 90, 180)
    finally:
        await client.close()
