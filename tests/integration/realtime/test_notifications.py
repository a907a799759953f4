"""Favourites and notifications end to end: HTTP through the gateway, events from the vendor service and the
websocket gateway, pushes to a user's socket on another replica, on real PostgreSQL, NATS and Redis.

The acceptance case: a user with a favourite vendor, connected to replica B, receives the notification when the
vendor's owner opens it over the vendor socket on replica A, finds it unread over HTTP, and a redelivered event
creates no second notification. Every route is also fed garbage, and the gateway's answer when the service is gone
is the 502 envelope.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import nats
import pytest
from prometheus_client import REGISTRY

from services.devkit.servers import Nats, free_port
from services.event_catalog import CATALOG, SubscriptionStatus, UserSubscriptionData
from services.kit.events.envelope import new_envelope
from services.kit.http.server import AsgiServiceHost
from services.notifications.push import Pusher
from services.websocket.app import WebsocketHost
from tests.support.realtime import Account, Realtime
from tests.support.socket_clients import SocketClient


@dataclass
class Stack:
    realtime: Realtime
    gateway: AsgiServiceHost
    notifications: AsgiServiceHost
    replica_b: WebsocketHost
    consumer: str
    nats_url: str

    async def http(self, method: str, path: str, account: Account | None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {account.token}"} if account else {}
        async with httpx.AsyncClient(base_url=self.gateway.url, timeout=10) as client:
            return await client.request(method, path, headers=headers, **kwargs)

    async def unread(self, account: Account) -> int:
        answer = await self.http("GET", "/v1/notifications/unread-count", account)
        assert answer.status_code == 200, answer.text
        return int(answer.json()["unread"])

    async def caught_up(self, timeout_s: float = 15.0) -> None:
        """Until every durable consumer of the service has acknowledged everything the stream holds for it."""
        client = await nats.connect(self.nats_url)
        try:
            js = client.jetstream()
            deadline = time.monotonic() + timeout_s
            while True:
                infos = [
                    await js.consumer_info("EVENTS", f"{self.consumer}-{s}")
                    for s in ("vendors", "presence", "subscriptions")
                ]
                if all(i.num_pending == 0 and i.num_ack_pending == 0 for i in infos):
                    return
                assert time.monotonic() < deadline, [(i.name, i.num_pending, i.num_ack_pending) for i in infos]
                await asyncio.sleep(0.05)
        finally:
            await client.close()


@pytest.fixture(scope="module")
async def stack(
    realtime: Realtime, nats_server: Nats, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    hosts = realtime.hosts
    channel = realtime.websocket.settings.socketio_channel
    consumer = f"notifications-{uuid.uuid4().hex[:8]}"
    notifications = await hosts.start_notifications(
        vendors=realtime.vendors,
        users=realtime.users,
        identity=realtime.identity,
        socketio_channel=channel,
        consumer_name=consumer,
    )
    gateway = await realtime.start_gateway(tmp_path_factory.mktemp("uploads"), notifications_url=notifications.url)
    replica_b = await hosts.start_websocket(realtime.websocket.settings)  # the same channel: a second replica
    yield Stack(realtime, gateway, notifications, replica_b, consumer, nats_server.url)


async def next_of_kind(socket: SocketClient, kind: str, wait_s: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + wait_s
    while True:
        pushed = await socket.next("notification", max(0.1, deadline - time.monotonic()))
        if pushed["kind"] == kind:
            return dict(pushed)


async def test_a_favourite_vendor_opening_reaches_the_fan_on_another_replica_once(stack: Stack) -> None:
    realtime = stack.realtime
    owner, fan = await realtime.account(), await realtime.account()
    vendor_id = await realtime.vendor(owner, name="Tacos El Rey")

    added = await stack.http("PUT", f"/v1/users/me/favourites/{vendor_id}", fan)
    assert added.status_code == 200, added.text
    assert (added.json()["vendorId"], added.json()["name"], added.json()["open"]) == (vendor_id, "Tacos El Rey", False)
    assert (await stack.http("PUT", f"/v1/users/me/favourites/{vendor_id}", fan)).status_code == 200  # idempotent
    listed = (await stack.http("GET", "/v1/users/me/favourites", fan)).json()["favourites"]
    assert [f["vendorId"] for f in listed] == [vendor_id]
    first = (await stack.http("GET", "/v1/notifications", owner)).json()["notifications"]
    assert [(n["kind"], n["vendorId"]) for n in first] == [("FIRST_FAVOURITE", vendor_id)]

    user = await realtime.connect("/user", fan, url=stack.replica_b.url)
    vendor = await realtime.connect("/vendor", owner, url=realtime.websocket.url)
    try:
        opened = await vendor.call("setVendorOpen", {"vendorId": vendor_id, "open": True})
        assert opened["ok"] is True, opened
        pushed = await next_of_kind(user, "VENDOR_OPENED")
        assert (pushed["vendorId"], pushed["title"], pushed["readAt"]) == (vendor_id, "Tacos El Rey is open", None)

        page = (await stack.http("GET", "/v1/notifications?unread=true", fan)).json()
        assert [n["id"] for n in page["notifications"]] == [pushed["id"]] and page["nextCursor"] is None
        assert await stack.unread(fan) == 1

        await redeliver_last(stack.nats_url, "events.vendor.updated", vendor_id)
        await stack.caught_up()
        await user.nothing("notification", within=1.0)
        assert await stack.unread(fan) == 1

        read = await stack.http("POST", f"/v1/notifications/{pushed['id']}/read", fan)
        assert read.status_code == 200 and read.json()["readAt"] is not None, read.text
        assert await stack.unread(fan) == 0
        stranger = await realtime.account()
        assert (await stack.http("POST", f"/v1/notifications/{pushed['id']}/read", stranger)).status_code == 404
    finally:
        await user.close()
        await vendor.close()


async def redeliver_last(nats_url: str, subject: str, vendor_id: str) -> None:
    """Publish the newest stored event of `vendor_id` on `subject` again, as a new stream message carrying the same
    envelope (what an at-least-once publisher or a dead-letter replay produces)."""
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        info = await js.stream_info("EVENTS")
        for seq in range(info.state.last_seq, 0, -1):
            stored = await js.get_msg("EVENTS", seq)
            if stored.subject == subject and json.loads(stored.data or b"{}")["data"]["id"] == vendor_id:
                await js.publish(subject, stored.data or b"", headers={"Nats-Msg-Id": uuid.uuid4().hex})
                return
        raise AssertionError(f"no {subject} of {vendor_id} in the stream")
    finally:
        await client.close()


async def publish_subscription_change(nats_url: str, user_id: str, n: int) -> str:
    envelope = new_envelope(
        "user.subscription.updated",
        UserSubscriptionData(
            user_id=user_id,
            status=SubscriptionStatus.ACTIVE,
            product_id=f"venta_pro_{n}",
            event_type="RENEWAL",
            timestamp=datetime.now(UTC),
        ),
        version=CATALOG.latest_version("user.subscription.updated"),
    )
    client = await nats.connect(nats_url)
    try:
        await client.jetstream().publish(
            envelope.subject, envelope.encode(), headers={"Nats-Msg-Id": envelope.message_id}
        )
    finally:
        await client.close()
    return envelope.message_id


async def test_pages_are_newest_first_and_disjoint_and_read_all_marks_every_one(stack: Stack) -> None:
    account = await stack.realtime.account()
    for n in range(5):
        await publish_subscription_change(stack.nats_url, account.user_id, n)
    await stack.caught_up()
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await stack.http("GET", "/v1/notifications", account, params=params)).json()
        seen += [n["data"]["productId"] for n in page["notifications"]]
        pages += 1
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert (pages, seen) == (3, [f"venta_pro_{n}" for n in (4, 3, 2, 1, 0)])
    assert await stack.unread(account) == 5
    marked = await stack.http("POST", "/v1/notifications/read-all", account)
    assert marked.json() == {"marked": 5}
    assert await stack.unread(account) == 0
    assert (await stack.http("POST", "/v1/notifications/read-all", account)).json() == {"marked": 0}


async def test_removing_a_favourite_and_deleting_a_vendor(stack: Stack) -> None:
    realtime = stack.realtime
    owner, fan = await realtime.account(), await realtime.account()
    kept, dropped = await realtime.vendor(owner, name="Kept"), await realtime.vendor(owner, name="Dropped")
    for vendor_id in (kept, dropped):
        assert (await stack.http("PUT", f"/v1/users/me/favourites/{vendor_id}", fan)).status_code == 200
    assert (await stack.http("DELETE", f"/v1/users/me/favourites/{dropped}", fan)).status_code == 204
    assert (await stack.http("DELETE", f"/v1/users/me/favourites/{dropped}", fan)).status_code == 204  # idempotent
    names = [f["name"] for f in (await stack.http("GET", "/v1/users/me/favourites", fan)).json()["favourites"]]
    assert names == ["Kept"]
    deleted = await stack.http("DELETE", f"/v1/vendors/{kept}", owner)
    assert deleted.status_code in (200, 204), deleted.text
    await stack.caught_up()
    assert (await stack.http("GET", "/v1/users/me/favourites", fan)).json()["favourites"] == []
    owner_kinds = [n["kind"] for n in (await stack.http("GET", "/v1/notifications", owner)).json()["notifications"]]
    assert owner_kinds == ["FIRST_FAVOURITE", "FIRST_FAVOURITE"]  # one per vendor, however often it is favourited


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v1/notifications?cursor=not-a-cursor", 400, "INVALID_CURSOR"),
        ("GET", "/v1/notifications?cursor=bjotMQ", 400, "INVALID_CURSOR"),  # "n:-1"
        ("GET", "/v1/notifications?limit=0", 400, None),
        ("GET", "/v1/notifications?limit=5000", 400, None),
        ("GET", "/v1/notifications?unread=maybe", 400, None),
        ("GET", f"/v1/notifications?cursor={'x' * 65}", 400, None),
        ("PUT", "/v1/users/me/favourites/not-a-uuid", 400, None),
        ("PUT", "/v1/users/me/favourites/' OR 1=1 --", 400, None),
        ("PUT", f"/v1/users/me/favourites/{uuid.uuid4()}", 404, None),
        ("DELETE", "/v1/users/me/favourites/42", 400, None),
        ("POST", "/v1/notifications/not-a-uuid/read", 400, None),
        ("POST", f"/v1/notifications/{uuid.uuid4()}/read", 404, "NOTIFICATION_NOT_FOUND"),
    ],
)
async def test_garbage_gets_the_error_envelope_and_changes_nothing(
    stack: Stack, method: str, path: str, status: int, code: str | None
) -> None:
    account = await stack.realtime.account()
    answer = await stack.http(method, path, account)
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error"]["code"], body
    if code is not None:
        assert body["error"]["code"] == code
    assert (await stack.http("GET", "/v1/users/me/favourites", account)).json()["favourites"] == []
    assert await stack.unread(account) == 0


@pytest.mark.parametrize("token", [None, "garbage", "Bearer.eyJ.x"])
async def test_no_or_a_bad_token_is_refused_by_the_service_itself(stack: Stack, token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for base in (stack.gateway.url, stack.notifications.url):  # the service does not trust the gateway to check
        async with httpx.AsyncClient(base_url=base) as client:
            answer = await client.get("/v1/notifications", headers=headers)
        assert answer.status_code == 401, (base, answer.text)
        assert answer.json()["error"]["type"] == "AUTHENTICATION"


async def test_a_poisoned_event_is_dead_lettered_and_the_next_one_is_still_handled(stack: Stack) -> None:
    account = await stack.realtime.account()
    await publish_subscription_change(stack.nats_url, "not-a-uuid", 0)
    await publish_subscription_change(stack.nats_url, account.user_id, 1)
    await stack.caught_up()
    assert await stack.unread(account) == 1
    client = await nats.connect(stack.nats_url)
    try:
        dead = await client.jetstream().get_last_msg("DEADLETTER", "deadletter.events.user.subscription.updated")
    finally:
        await client.close()
    assert json.loads(dead.data or b"{}")["data"]["userId"] == "not-a-uuid"


async def test_the_gateway_answers_502_when_the_service_is_unreachable(stack: Stack, tmp_path: Path) -> None:
    realtime = stack.realtime
    lonely = await realtime.start_gateway(tmp_path, notifications_url=f"http://127.0.0.1:{free_port()}")
    account = await realtime.account()
    async with httpx.AsyncClient(base_url=lonely.url) as client:
        answer = await client.get("/v1/notifications", headers={"Authorization": f"Bearer {account.token}"})
    assert answer.status_code == 502, answer.text
    assert answer.json()["error"]["type"] == "EXTERNAL_SERVICE"


async def test_pushes_are_counted_by_outcome_and_a_dead_redis_fails_none_of_them(stack: Stack) -> None:
    """The library's manager swallows publish errors; ours counts them, and a push never raises into the handler."""
    row: Any = SimpleNamespace(
        id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        kind="VENDOR_OPENED",
        title="t",
        body="b",
        vendor_id=None,
        data={},
        created_at=datetime.now(UTC),
        read_at=None,
    )

    def count(outcome: str) -> float:
        return REGISTRY.get_sample_value("venta_notifications_pushed_total", {"outcome": outcome}) or 0.0

    before = {o: count(o) for o in ("sent", "no_listener", "failed")}
    channel = stack.realtime.websocket.settings.socketio_channel
    await Pusher(stack.realtime.hosts.redis.url, channel=channel).push([row])  # two replicas listen
    await Pusher(stack.realtime.hosts.redis.url, channel=f"nobody-{uuid.uuid4().hex[:6]}").push([row])
    await Pusher(f"redis://127.0.0.1:{free_port()}/0", channel=channel).push([row])
    assert {o: count(o) - before[o] for o in before} == {"sent": 1, "no_listener": 1, "failed": 1}
