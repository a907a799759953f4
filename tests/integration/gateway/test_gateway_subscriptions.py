"""RevenueCat's subscription lifecycle over the public webhook, on real servers: every change applies in the order of
the event's own timestamp, a repeated or late delivery changes nothing and publishes nothing, concurrent deliveries
for one user serialize, and garbage gets the error envelope and changes nothing."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.support.databases import scalar
from tests.support.envelopes import assert_envelope
from tests.support.platform_hosts import Platform, new_clerk_id
from tests.support.revenuecat import (
    AUTH,
    DAY_MS,
    delivery,
    full_lifecycle,
    published_changes,
    stored_subscription,
    subscription_updates,
)

URL = "/v1/webhooks/revenuecat"
START_MS = 1_760_000_000_000  # 2025-10-09
STATE = ("status", "product_id", "period_start", "period_end", "last_event_at", "last_event_id")


async def new_user(platform: Platform) -> str:
    clerk_id = new_clerk_id()
    await platform.token(clerk_id)  # the user exists (as after Clerk's user.created)
    return clerk_id


def state(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[name] for name in STATE)


async def post(api: httpx.AsyncClient, body: dict[str, Any], path: str = URL) -> httpx.Response:
    return await api.post(path, json=body, headers=AUTH)


async def test_the_full_lifecycle_in_order(api: httpx.AsyncClient, platform: Platform) -> None:
    clerk_id = await new_user(platform)
    steps = full_lifecycle(clerk_id, START_MS)
    async with subscription_updates(platform.settings.nats_url) as bus:
        for step in steps:
            answer = await post(api, step.body)
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"message": f"{step.event_type} applied: subscription {step.status}"}
            row = await stored_subscription(platform.users, clerk_id)
            assert state(row) == (
                step.status,
                step.product_id,
                step.period_start,
                step.period_end,
                step.at,
                step.event_id,
            ), step.event_type
        user_id = str((await stored_subscription(platform.users, clerk_id))["user_id"])
        seen = await bus.wait_for(user_id, len(steps))
    assert [(d["eventType"], d["status"], d["productId"]) for d in seen] == [
        (s.event_type, s.status, s.product_id) for s in steps
    ]
    assert [datetime.fromisoformat(d["timestamp"]) for d in seen] == [s.at for s in steps]
    assert [datetime.fromisoformat(d["periodEnd"]) for d in seen] == [s.period_end for s in steps]
    assert seen == await published_changes(platform.users, clerk_id)
    purchases = await scalar(
        platform.users,
        "SELECT count(*) FROM integration WHERE user_id = $1 AND type = 'RevenueCat'",
        uuid.UUID(user_id),
    )
    assert purchases == 1  # the INITIAL_PURCHASE recorded its transaction


@pytest.mark.parametrize("order", ["reversed", "seed-1", "seed-2", "seed-3", "seed-4"])
async def test_shuffled_deliveries_end_in_the_same_state(
    api: httpx.AsyncClient, platform: Platform, order: str
) -> None:
    clerk_id = await new_user(platform)
    steps = full_lifecycle(clerk_id, START_MS)
    shuffled = list(reversed(steps))
    if order != "reversed":
        random.Random(order).shuffle(shuffled)
    for step in shuffled:
        answer = await post(api, step.body)
        assert answer.status_code == 200, answer.text
    newest = steps[-1]
    row = await stored_subscription(platform.users, clerk_id)
    assert state(row) == (
        "Inactive",
        "venta_pro_yearly",
        newest.period_start,
        newest.period_end,
        newest.at,
        newest.event_id,
    )
    changes = await published_changes(platform.users, clerk_id)
    stamps = [datetime.fromisoformat(d["timestamp"]) for d in changes]
    assert stamps == sorted(set(stamps)), "only a newer event may apply"
    assert stamps[-1] == newest.at and changes[-1]["status"] == "Inactive"
    if order == "reversed":
        assert len(changes) == 1  # the newest came first: every other delivery was late


async def test_repeated_and_late_deliveries_change_nothing(api: httpx.AsyncClient, platform: Platform) -> None:
    clerk_id = await new_user(platform)
    purchase, renewal, *_ = full_lifecycle(clerk_id, START_MS)
    assert (await post(api, purchase.body)).status_code == 200
    assert (await post(api, renewal.body, path="/webhook/subscription")).status_code == 200  # the original alias
    before = await stored_subscription(platform.users, clerk_id)
    published = await published_changes(platform.users, clerk_id)
    assert len(published) == 2

    again = await post(api, renewal.body)  # RevenueCat retries: same id, same timestamp
    assert again.status_code == 200
    assert again.json() == {"message": f"RENEWAL {renewal.event_id} already applied"}
    late = delivery(
        clerk_id,
        "CANCELLATION",
        at_ms=START_MS + 10 * DAY_MS,
        purchased_at_ms=START_MS,
        expiration_at_ms=START_MS + 30 * DAY_MS,
        cancel_reason="UNSUBSCRIBE",
    )
    answer = await post(api, late)
    assert answer.status_code == 200 and answer.json()["message"].endswith(
        "is older than the last applied event: ignored"
    )
    assert (await post(api, purchase.body)).status_code == 200  # a retry of an older applied event

    assert await stored_subscription(platform.users, clerk_id) == before  # not even updated_at moved
    assert await published_changes(platform.users, clerk_id) == published
    purchases = await scalar(
        platform.users, "SELECT count(*) FROM integration WHERE user_id = $1 AND type = 'RevenueCat'", before["user_id"]
    )
    assert purchases == 1


async def test_equal_timestamps_are_ordered_by_event_id(api: httpx.AsyncClient, platform: Platform) -> None:
    prefix = f"evt_{uuid.uuid4().hex}"
    finals = []
    for order in ((0, 1), (1, 0)):
        clerk_id = await new_user(platform)
        period = {"purchased_at_ms": START_MS, "expiration_at_ms": START_MS + 30 * DAY_MS}
        same_ms = START_MS + 5 * DAY_MS
        pair = [
            delivery(clerk_id, "CANCELLATION", at_ms=same_ms, event_id=f"{prefix}_a", **period),
            delivery(clerk_id, "UNCANCELLATION", at_ms=same_ms, event_id=f"{prefix}_b", **period),
        ]
        for index in order:
            assert (await post(api, pair[index])).status_code == 200
        row = await stored_subscription(platform.users, clerk_id)
        finals.append((row["status"], row["last_event_id"]))
        assert len(await published_changes(platform.users, clerk_id)) == (2 if order == (0, 1) else 1)
    assert finals == [("Active", f"{prefix}_b")] * 2


async def test_concurrent_deliveries_for_one_user_serialize(api: httpx.AsyncClient, platform: Platform) -> None:
    clerk_id = await new_user(platform)
    kinds = ["RENEWAL", "CANCELLATION", "UNCANCELLATION", "BILLING_ISSUE", "PRODUCT_CHANGE"]
    events = [
        delivery(
            clerk_id,
            kinds[i % len(kinds)],
            at_ms=START_MS + i * 1000,
            purchased_at_ms=START_MS + i * 1000,
            expiration_at_ms=START_MS + i * 1000 + 30 * DAY_MS,
            product_id=f"product_{i}",
        )
        for i in range(40)
    ]
    deliveries = [body for body in events for _ in range(3)]  # every event delivered three times, all at once
    random.Random(7).shuffle(deliveries)
    answers = await asyncio.gather(*(post(api, body) for body in deliveries))
    assert [a.status_code for a in answers] == [200] * len(deliveries), [a.text for a in answers if a.is_error]

    newest = events[-1]["event"]
    row = await stored_subscription(platform.users, clerk_id)
    assert (row["last_event_id"], row["product_id"]) == (newest["id"], "product_39")
    changes = await published_changes(platform.users, clerk_id)
    applied = [a for a in answers if " applied: " in a.json()["message"]]
    assert len(changes) == len(applied) >= 1
    stamps = [datetime.fromisoformat(d["timestamp"]) for d in changes]
    assert stamps == sorted(set(stamps)), "each applied event was newer than the one applied before it"
    assert changes[-1]["productId"] == "product_39"


def _without(key: str) -> Any:
    return lambda event: event.pop(key)


def _with(**fields: Any) -> Any:
    return lambda event: event.update(fields)


GARBAGE: list[tuple[str, str, Any, int, str]] = [
    # case, type, change to the event, status, field named
    ("no event_timestamp_ms", "RENEWAL", _without("event_timestamp_ms"), 400, "event.event_timestamp_ms"),
    ("null event_timestamp_ms", "EXPIRATION", _with(event_timestamp_ms=None), 400, "event.event_timestamp_ms"),
    ("negative event_timestamp_ms", "CANCELLATION", _with(event_timestamp_ms=-5), 400, "event.event_timestamp_ms"),
    ("text event_timestamp_ms", "RENEWAL", _with(event_timestamp_ms="yesterday"), 400, "event.event_timestamp_ms"),
    ("event_timestamp_ms past int64", "RENEWAL", _with(event_timestamp_ms=2**70), 400, "event.event_timestamp_ms"),
    ("event_timestamp_ms past 9999", "RENEWAL", _with(event_timestamp_ms=10**16), 400, "event.event_timestamp_ms"),
    ("negative purchased_at_ms", "RENEWAL", _with(purchased_at_ms=-1), 400, "event.purchased_at_ms"),
    ("no purchased_at_ms", "UNCANCELLATION", _without("purchased_at_ms"), 400, "event.purchased_at_ms"),
    ("expiration before purchase", "RENEWAL", _with(expiration_at_ms=START_MS - 1), 400, "event.expiration_at_ms"),
    (
        "expiration at purchase",
        "BILLING_ISSUE",
        _with(expiration_at_ms=START_MS + 40 * DAY_MS),
        400,
        "event.expiration_at_ms",
    ),
    ("no expiration_at_ms", "PRODUCT_CHANGE", _with(expiration_at_ms=None), 400, "event.expiration_at_ms"),
    ("no product_id", "RENEWAL", _with(product_id=None), 400, "event.product_id"),
    ("no event id", "RENEWAL", _without("id"), 400, "event.id"),
    ("no transaction on a purchase", "INITIAL_PURCHASE", _with(transaction_id=None), 400, "event.transaction_id"),
    ("no clerkUserId", "RENEWAL", _with(subscriber_attributes={}), 400, "event.subscriber_attributes.clerkUserId"),
    (
        "bad clerkUserId",
        "RENEWAL",
        _with(subscriber_attributes={"clerkUserId": {"value": "user 1; drop"}}),
        400,
        "event.subscriber_attributes.clerkUserId",
    ),
    ("oversized product_id", "RENEWAL", _with(product_id="p" * 300), 400, "event.product_id"),
    ("unknown user", "RENEWAL", _with(subscriber_attributes={"clerkUserId": {"value": "user_nobody_here"}}), 404, ""),
]


@pytest.mark.parametrize(("case", "event_type", "change", "status", "field"), GARBAGE, ids=[g[0] for g in GARBAGE])
async def test_garbage_is_refused_and_changes_nothing(
    api: httpx.AsyncClient, platform: Platform, case: str, event_type: str, change: Any, status: int, field: str
) -> None:
    clerk_id = await new_user(platform)
    first = full_lifecycle(clerk_id, START_MS)[0]
    assert (await post(api, first.body)).status_code == 200
    before = await stored_subscription(platform.users, clerk_id)
    body = delivery(
        clerk_id,
        event_type,
        at_ms=START_MS + 40 * DAY_MS,
        purchased_at_ms=START_MS + 40 * DAY_MS,
        expiration_at_ms=START_MS + 70 * DAY_MS,
    )
    change(body["event"])
    answer = await post(api, body)
    if status == 404:
        assert_envelope(answer, 404, "NOT_FOUND")
    else:
        error = assert_envelope(answer, 400, "VALIDATION")
        assert [d["field"] for d in error["details"]] == [field], error
    assert await stored_subscription(platform.users, clerk_id) == before
    assert len(await published_changes(platform.users, clerk_id)) == 1


async def test_bodies_that_are_not_an_event_are_400(api: httpx.AsyncClient) -> None:
    for raw in (b"{not json", b"[]", b'{"event": "x"}', b'{"event": {"id": "e"}}', b'{"event": {"type": 5}}'):
        answer = await api.post(URL, content=raw, headers={**AUTH, "content-type": "application/json"})
        assert_envelope(answer, 400, "VALIDATION")


IGNORED = ["TEST", "TRANSFER", "SUBSCRIBER_ALIAS", "NON_RENEWING_PURCHASE", "SUBSCRIPTION_PAUSED", "SOMETHING_NEW"]


async def test_other_event_types_are_acknowledged_and_change_nothing(
    api: httpx.AsyncClient, platform: Platform
) -> None:
    clerk_id = await new_user(platform)
    first = full_lifecycle(clerk_id, START_MS)[0]
    assert (await post(api, first.body)).status_code == 200
    before = await stored_subscription(platform.users, clerk_id)
    later = {"at_ms": START_MS + 50 * DAY_MS, "purchased_at_ms": START_MS + 50 * DAY_MS}
    for event_type in IGNORED:
        body = delivery(clerk_id, event_type, expiration_at_ms=START_MS + 80 * DAY_MS, **later)
        if event_type == "TRANSFER":  # RevenueCat's transfer names no app user, and says who from and to
            for key in ("app_user_id", "subscriber_attributes", "product_id"):
                body["event"].pop(key)
            body["event"] |= {"transferred_from": ["someone_else"], "transferred_to": [clerk_id]}
        answer = await post(api, body)
        assert answer.status_code == 200 and answer.json() == {"message": f"ignored event type {event_type}"}
    # the refund of a one-off purchase: a CANCELLATION with no period, which Venta does not track
    refund = delivery(clerk_id, "CANCELLATION", expiration_at_ms=None, cancel_reason="CUSTOMER_SUPPORT", **later)
    answer = await post(api, refund)
    assert answer.status_code == 200 and answer.json()["message"].startswith("ignored CANCELLATION")
    assert await stored_subscription(platform.users, clerk_id) == before
    assert len(await published_changes(platform.users, clerk_id)) == 1


async def test_a_bad_secret_is_401_and_changes_nothing(api: httpx.AsyncClient, platform: Platform) -> None:
    clerk_id = await new_user(platform)
    purchase, renewal, *_ = full_lifecycle(clerk_id, START_MS)
    assert (await post(api, purchase.body)).status_code == 200
    before = await stored_subscription(platform.users, clerk_id)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": AUTH["Authorization"] + "x"}):
        answer = await api.post(URL, json=renewal.body, headers=headers)
        assert_envelope(answer, 401, "AUTHENTICATION", "WEBHOOK_SECRET_INVALID")
    assert await stored_subscription(platform.users, clerk_id) == before
    assert len(await published_changes(platform.users, clerk_id)) == 1
