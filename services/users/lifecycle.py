"""The RevenueCat subscription lifecycle, pure: which state an event leads to, and whether it may apply at all.

RevenueCat delivers late, out of order and more than once (a retry keeps the event's `id` and `event_timestamp_ms`).
So an event applies only when it is newer than the last one applied, by its own timestamp, ties broken by the
greater event id (every replica and every delivery order agrees). Each event carries the whole subscription (product,
period), so the state after it depends on that event alone: whatever order the same deliveries arrive in, the
newest one wins and the state ends the same. No I/O, no clock here: the repository locks the row and calls these.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.users.models import SubscriptionStatus

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_MILLIS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last instant a datetime holds


class SubscriptionEventType(enum.StrEnum):
    """The RevenueCat event types that change a subscription (the others are acknowledged and ignored)."""

    INITIAL_PURCHASE = "INITIAL_PURCHASE"
    RENEWAL = "RENEWAL"
    CANCELLATION = "CANCELLATION"
    UNCANCELLATION = "UNCANCELLATION"
    EXPIRATION = "EXPIRATION"
    BILLING_ISSUE = "BILLING_ISSUE"
    PRODUCT_CHANGE = "PRODUCT_CHANGE"


STATUS_AFTER: dict[SubscriptionEventType, SubscriptionStatus] = {
    SubscriptionEventType.INITIAL_PURCHASE: SubscriptionStatus.ACTIVE,
    SubscriptionEventType.RENEWAL: SubscriptionStatus.ACTIVE,
    SubscriptionEventType.UNCANCELLATION: SubscriptionStatus.ACTIVE,
    SubscriptionEventType.PRODUCT_CHANGE: SubscriptionStatus.ACTIVE,
    # will not renew, but the period that was paid for still runs: its end is kept
    SubscriptionEventType.CANCELLATION: SubscriptionStatus.CANCELLED,
    # the store is retrying the charge; not expired (RevenueCat sends EXPIRATION when access ends)
    SubscriptionEventType.BILLING_ISSUE: SubscriptionStatus.BILLING_ISSUE,
    SubscriptionEventType.EXPIRATION: SubscriptionStatus.INACTIVE,
}


@dataclass(frozen=True)
class LifecycleEvent:
    """One validated RevenueCat event (the servicer builds it from the request)."""

    event_id: str
    type: SubscriptionEventType
    at: datetime  # event_timestamp_ms: when RevenueCat generated it
    product_id: str
    purchased_at: datetime
    expires_at: datetime
    new_product_id: str | None = None
    transaction_id: str | None = None
    original_transaction_id: str | None = None
    period_type: str | None = None
    reason: str | None = None  # cancel_reason (CANCELLATION) or expiration_reason (EXPIRATION)


@dataclass(frozen=True)
class SubscriptionState:
    status: SubscriptionStatus
    product_id: str
    period_start: datetime
    period_end: datetime
    last_event_at: datetime
    last_event_id: str


def from_millis(ms: int) -> datetime:
    """Milliseconds since the epoch, exactly (no float rounding)."""
    return EPOCH + timedelta(milliseconds=ms)


def supersedes(event: LifecycleEvent, *, last_event_at: datetime | None, last_event_id: str | None) -> bool:
    """Whether `event` is newer than the last applied one; False for that same event delivered again."""
    if last_event_at is None:
        return True
    return (event.at, event.event_id) > (last_event_at, last_event_id or "")


def state_after(event: LifecycleEvent) -> SubscriptionState:
    """The subscription once `event` is applied. PRODUCT_CHANGE switches to `new_product_id` when the store names it."""
    product = event.product_id
    if event.type is SubscriptionEventType.PRODUCT_CHANGE and event.new_product_id:
        product = event.new_product_id
    return SubscriptionState(
        status=STATUS_AFTER[event.type],
        product_id=product,
        period_start=event.purchased_at,
        period_end=event.expires_at,
        last_event_at=event.at,
        last_event_id=event.event_id,
    )
