"""RevenueCat webhook deliveries shaped as RevenueCat sends them, and what the user service stored and published.

The state is read straight from the user service's database (its subscription row, its outbox) and from NATS with a
plain subscriber, outside the code under test.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import nats

from services.kit.grpc.server import GrpcServiceHost
from tests.support.databases import connect_to_database_of
from tests.support.platform_hosts import REVENUECAT_SECRET

AUTH = {"Authorization": f"Bearer {REVENUECAT_SECRET}"}
DAY_MS = 86_400_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SUBSCRIPTION_UPDATED = "user.subscription.updated"


def at(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def delivery(
    clerk_id: str,
    event_type: str,
    *,
    at_ms: int,
    purchased_at_ms: int,
    expiration_at_ms: int | None,
    product_id: str = "venta_pro_monthly",
    event_id: str | None = None,
    transaction_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One webhook body, with the fields RevenueCat's documented payload carries (and `extra` on top)."""
    transaction_id = transaction_id or f"tx_{uuid.uuid4().hex[:12]}"
    event: dict[str, Any] = {
        "id": event_id or f"evt_{uuid.uuid4().hex}",
        "type": event_type,
        "app_id": "app_venta",
        "app_user_id": clerk_id,
        "original_app_user_id": clerk_id,
        "aliases": [clerk_id],
        "event_timestamp_ms": at_ms,
        "product_id": product_id,
        "entitlement_ids": ["pro"],
        "period_type": "NORMAL",
        "purchased_at_ms": purchased_at_ms,
        "expiration_at_ms": expiration_at_ms,
        "environment": "PRODUCTION",
        "store": "APP_STORE",
        "transaction_id": transaction_id,
        "original_transaction_id": transaction_id,
        "currency": "USD",
        "price": 4.99,
        "subscriber_attributes": {"clerkUserId": {"value": clerk_id, "updated_at_ms": 1}},
        **extra,
    }
    return {"api_version": "1.0", "event": event}


def purchase(clerk_id: str, *, transaction: str, event_type: str = "INITIAL_PURCHASE") -> dict[str, Any]:
    """A purchase happening now, for a month."""
    now = int(time.time() * 1000)
    return delivery(
        clerk_id,
        event_type,
        at_ms=now,
        purchased_at_ms=now - 1000,
        expiration_at_ms=now + 30 * DAY_MS,
        transaction_id=transaction,
    )


@dataclass(frozen=True)
class Step:
    """A delivery and the subscription it must leave behind (when it is the newest applied)."""

    body: dict[str, Any]
    status: str
    product_id: str
    period_start: datetime
    period_end: datetime

    @property
    def event_id(self) -> str:
        return str(self.body["event"]["id"])

    @property
    def event_type(self) -> str:
        return str(self.body["event"]["type"])

    @property
    def at(self) -> datetime:
        return at(self.body["event"]["event_timestamp_ms"])


def full_lifecycle(clerk_id: str, start_ms: int) -> list[Step]:
    """Purchase, renewal, upgrade, cancel, uncancel, billing issue, renewal, cancel, expiry: in timestamp order."""
    month, year = "venta_pro_monthly", "venta_pro_yearly"
    p1 = (start_ms, start_ms + 30 * DAY_MS)
    p2 = (start_ms + 30 * DAY_MS, start_ms + 60 * DAY_MS)
    p3 = (start_ms + 62 * DAY_MS, start_ms + 427 * DAY_MS)
    script: list[tuple[str, int, tuple[int, int], str, str, str, dict[str, Any]]] = [
        # type, at (days after start), period, product sent, product stored, status, extra fields
        ("INITIAL_PURCHASE", 0, p1, month, month, "Active", {}),
        ("RENEWAL", 30, p2, month, month, "Active", {"is_trial_conversion": False}),
        ("PRODUCT_CHANGE", 35, p2, month, year, "Active", {"new_product_id": year}),
        ("CANCELLATION", 40, p2, year, year, "Cancelled", {"cancel_reason": "UNSUBSCRIBE"}),
        ("UNCANCELLATION", 45, p2, year, year, "Active", {}),
        ("BILLING_ISSUE", 60, p2, year, year, "BillingIssue", {"grace_period_expiration_at_ms": p2[1] + 16 * DAY_MS}),
        ("RENEWAL", 62, p3, year, year, "Active", {}),
        ("CANCELLATION", 100, p3, year, year, "Cancelled", {"cancel_reason": "BILLING_ERROR"}),
        ("EXPIRATION", 427, p3, year, year, "Inactive", {"expiration_reason": "BILLING_ERROR"}),
    ]
    steps = []
    for event_type, days, (start, end), sent, stored, status, extra in script:
        body = delivery(
            clerk_id,
            event_type,
            at_ms=start_ms + days * DAY_MS + 1234,
            purchased_at_ms=start,
            expiration_at_ms=end,
            product_id=sent,
            **extra,
        )
        steps.append(Step(body, status, stored, at(start), at(end)))
    return steps


async def stored_subscription(users: GrpcServiceHost, clerk_id: str) -> dict[str, Any]:
    """The user's subscription row, as the user service stored it."""
    conn = await connect_to_database_of(users)
    try:
        row = await conn.fetchrow(
            'SELECT s.* FROM user_subscription s JOIN "user" u ON u.id = s.user_id WHERE u.clerk_id = $1', clerk_id
        )
    finally:
        await conn.close()
    assert row is not None, f"no subscription for {clerk_id}"
    return dict(row)


async def published_changes(users: GrpcServiceHost, clerk_id: str) -> list[dict[str, Any]]:
    """The `user.subscription.updated` data the user service wrote to its outbox for this user, oldest first."""
    conn = await connect_to_database_of(users)
    try:
        user_id = await conn.fetchval('SELECT id FROM "user" WHERE clerk_id = $1', clerk_id)
        rows = await conn.fetch("SELECT payload FROM event_outbox WHERE type = $1 ORDER BY id", SUBSCRIPTION_UPDATED)
    finally:
        await conn.close()
    changes = [json.loads(row["payload"])["data"] for row in rows]
    return [data for data in changes if user_id is not None and data["userId"] == str(user_id)]


@dataclass
class BusListener:
    """`user.subscription.updated` messages seen on NATS by a plain subscriber."""

    received: list[dict[str, Any]] = field(default_factory=list)

    def of(self, user_id: str) -> list[dict[str, Any]]:
        return [envelope["data"] for envelope in self.received if envelope["data"]["userId"] == user_id]

    async def wait_for(self, user_id: str, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while len(self.of(user_id)) < count:
            assert time.monotonic() < deadline, f"{len(self.of(user_id))} of {count} events reached the bus"
            await asyncio.sleep(0.05)
        return self.of(user_id)


@asynccontextmanager
async def subscription_updates(nats_url: str) -> AsyncIterator[BusListener]:
    """Listens to `events.user.subscription.updated` while the block runs."""
    listener = BusListener()
    client = await nats.connect(nats_url)

    async def received(message: Any) -> None:
        listener.received.append(json.loads(message.data))

    try:
        await client.subscribe(f"events.{SUBSCRIPTION_UPDATED}", cb=received)
        await client.flush()
        yield listener
    finally:
        await client.close()
