"""Webhooks: only proven senders get through; redelivery changes nothing; refusals leave no trace."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from svix.webhooks import Webhook

from tests.support.databases import scalar
from tests.support.envelopes import assert_envelope
from tests.support.platform_hosts import CLERK_SECRET, REVENUECAT_SECRET, Platform, new_clerk_id
from tests.support.revenuecat import purchase

USERS_WITH = 'SELECT count(*) FROM "user" WHERE clerk_id = $1'


def clerk_delivery(
    event_type: str, clerk_id: str, *, secret: str = CLERK_SECRET, at: datetime | None = None, msg_id: str | None = None
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"type": event_type, "object": "event", "data": {"id": clerk_id, "object": "user"}})
    at = at or datetime.now(UTC)
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    signature = Webhook(secret).sign(msg_id, at, body)
    headers = {
        "svix-id": msg_id,
        "svix-timestamp": str(int(at.timestamp())),
        "svix-signature": signature,
        "content-type": "application/json",
    }
    return body.encode(), headers


@pytest.mark.parametrize("path", ["/v1/webhooks/clerk", "/webhook/clerk"])
async def test_clerk_user_created_then_redelivered_then_deleted(
    api: httpx.AsyncClient, platform: Platform, path: str
) -> None:
    clerk_id = new_clerk_id()
    body, headers = clerk_delivery("user.created", clerk_id)
    first = await api.post(path, content=body, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json() == {"message": "User created"}
    again = await api.post(path, content=body, headers=headers)  # Svix redelivers the same message
    assert again.status_code == 200 and again.json() == {"message": "User already exists"}
    assert await scalar(platform.users, USERS_WITH, clerk_id) == 1

    body, headers = clerk_delivery("user.deleted", clerk_id)
    deleted = await api.post(path, content=body, headers=headers)
    assert deleted.status_code == 200 and deleted.json() == {"message": "User deleted"}
    assert await scalar(platform.users, USERS_WITH, clerk_id) == 0


async def test_a_deleted_user_loses_access_at_once(api: httpx.AsyncClient, platform: Platform) -> None:
    clerk_id = new_clerk_id()
    auth = await platform.auth(clerk_id)
    assert (await api.get("/v1/users/me/vendors", headers=auth)).status_code == 200  # id now cached
    body, headers = clerk_delivery("user.deleted", clerk_id)
    assert (await api.post("/v1/webhooks/clerk", content=body, headers=headers)).status_code == 200
    assert_envelope(await api.get("/v1/users/me/vendors", headers=auth), 401, "AUTHENTICATION", "USER_NOT_FOUND")


async def test_other_clerk_events_are_acknowledged_and_ignored(api: httpx.AsyncClient) -> None:
    body, headers = clerk_delivery("session.created", new_clerk_id())
    answer = await api.post("/v1/webhooks/clerk", content=body, headers=headers)
    assert answer.status_code == 200 and answer.json()["message"].startswith("ignored")


@pytest.mark.parametrize(
    "case",
    [
        "no_headers",
        "wrong_secret",
        "tampered_body",
        "old_timestamp",
        "future_timestamp",
        "garbage_signature",
        "other_message_id",
    ],
)
async def test_clerk_refusals_are_401_and_change_nothing(api: httpx.AsyncClient, platform: Platform, case: str) -> None:
    clerk_id = new_clerk_id()
    body, headers = clerk_delivery("user.created", clerk_id)
    if case == "no_headers":
        headers = {"content-type": "application/json"}
    elif case == "wrong_secret":
        body, headers = clerk_delivery("user.created", clerk_id, secret="whsec_" + "b3RoZXItc2VjcmV0LW9mLWF0dGFja2Vy")
    elif case == "tampered_body":
        body = body.replace(clerk_id.encode(), new_clerk_id().encode())
    elif case == "old_timestamp":
        body, headers = clerk_delivery("user.created", clerk_id, at=datetime.now(UTC) - timedelta(minutes=10))
    elif case == "future_timestamp":
        body, headers = clerk_delivery("user.created", clerk_id, at=datetime.now(UTC) + timedelta(minutes=10))
    elif case == "garbage_signature":
        headers["svix-signature"] = "v1,AAAA"
    elif case == "other_message_id":
        headers["svix-id"] = "msg_replayed_under_another_id"
    answer = await api.post("/v1/webhooks/clerk", content=body, headers=headers)
    assert_envelope(answer, 401, "AUTHENTICATION", "WEBHOOK_SIGNATURE_INVALID")
    assert await scalar(platform.users, USERS_WITH, clerk_id) == 0


async def test_signed_garbage_is_400_not_500(api: httpx.AsyncClient) -> None:
    for raw in (
        '{"type": "user.created"}',
        '{"type": "user.created", "data": {"id": ""}}',
        "[1, 2]",
        '{"type": "user.created", "data": {"id": "bad id with spaces"}}',
    ):
        msg_id, at = f"msg_{uuid.uuid4().hex}", datetime.now(UTC)
        headers = {
            "svix-id": msg_id,
            "svix-timestamp": str(int(at.timestamp())),
            "svix-signature": Webhook(CLERK_SECRET).sign(msg_id, at, raw),
        }
        answer = await api.post("/v1/webhooks/clerk", content=raw.encode(), headers=headers)
        assert_envelope(answer, 400, "VALIDATION")


@pytest.mark.parametrize("path", ["/v1/webhooks/revenuecat", "/webhook/subscription"])
async def test_revenuecat_purchase_recorded_once(api: httpx.AsyncClient, platform: Platform, path: str) -> None:
    clerk_id = new_clerk_id()
    await platform.token(clerk_id)  # the user exists (as after Clerk's user.created)
    delivery = purchase(clerk_id, transaction=f"tx_{uuid.uuid4().hex}")
    auth = {"Authorization": f"Bearer {REVENUECAT_SECRET}"}
    first = await api.post(path, json=delivery, headers=auth)
    assert first.status_code == 200 and first.json() == {"message": "INITIAL_PURCHASE applied: subscription Active"}
    again = await api.post(path, json=delivery, headers={"Authorization": REVENUECAT_SECRET})  # bare secret too
    event_id = delivery["event"]["id"]
    assert again.status_code == 200 and again.json() == {"message": f"INITIAL_PURCHASE {event_id} already applied"}
    count = await scalar(
        platform.users,
        'SELECT count(*) FROM integration i JOIN "user" u ON u.id = i.user_id '
        "WHERE u.clerk_id = $1 AND i.type = 'RevenueCat' AND i.provider_id = 'venta_pro_monthly'",
        clerk_id,
    )
    assert count == 1


async def test_revenuecat_refusals(api: httpx.AsyncClient, platform: Platform) -> None:
    clerk_id = new_clerk_id()
    await platform.token(clerk_id)
    delivery = purchase(clerk_id, transaction="tx_refused")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": REVENUECAT_SECRET + "x"}):
        answer = await api.post("/v1/webhooks/revenuecat", json=delivery, headers=headers)
        assert_envelope(answer, 401, "AUTHENTICATION", "WEBHOOK_SECRET_INVALID")
    refused = "SELECT count(*) FROM integration WHERE data->>'transactionId' = 'tx_refused'"
    assert await scalar(platform.users, refused) == 0

    auth = {"Authorization": f"Bearer {REVENUECAT_SECRET}"}
    test_event = await api.post(
        "/v1/webhooks/revenuecat", json=purchase(clerk_id, transaction="t", event_type="TEST"), headers=auth
    )
    assert test_event.status_code == 200 and test_event.json()["message"].startswith("ignored")
    no_clerk = purchase(clerk_id, transaction="t2")
    no_clerk["event"]["subscriber_attributes"] = {}
    assert_envelope(await api.post("/v1/webhooks/revenuecat", json=no_clerk, headers=auth), 400, "VALIDATION")
    unknown_user = purchase(new_clerk_id(), transaction="t3")
    assert_envelope(await api.post("/v1/webhooks/revenuecat", json=unknown_user, headers=auth), 404, "NOT_FOUND")
    assert_envelope(await api.post("/v1/webhooks/revenuecat", content=b"{not json", headers=auth), 400, "VALIDATION")
