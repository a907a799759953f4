"""The subscription lifecycle's pure rules: which status each RevenueCat event leads to, and which event may apply."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from services.users.lifecycle import (
    MAX_MILLIS,
    STATUS_AFTER,
    LifecycleEvent,
    SubscriptionEventType,
    from_millis,
    state_after,
    supersedes,
)
from services.users.models import SubscriptionStatus

T0 = datetime(2025, 10, 9, tzinfo=UTC)


def event(
    kind: SubscriptionEventType, *, at: datetime = T0, event_id: str = "evt_1", **fields: object
) -> LifecycleEvent:
    values: dict[str, object] = {
        "event_id": event_id,
        "type": kind,
        "at": at,
        "product_id": "monthly",
        "purchased_at": T0,
        "expires_at": T0 + timedelta(days=30),
    }
    return LifecycleEvent(**(values | fields))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (SubscriptionEventType.INITIAL_PURCHASE, SubscriptionStatus.ACTIVE),
        (SubscriptionEventType.RENEWAL, SubscriptionStatus.ACTIVE),
        (SubscriptionEventType.UNCANCELLATION, SubscriptionStatus.ACTIVE),
        (SubscriptionEventType.PRODUCT_CHANGE, SubscriptionStatus.ACTIVE),
        (SubscriptionEventType.CANCELLATION, SubscriptionStatus.CANCELLED),
        (SubscriptionEventType.BILLING_ISSUE, SubscriptionStatus.BILLING_ISSUE),
        (SubscriptionEventType.EXPIRATION, SubscriptionStatus.INACTIVE),
    ],
)
def test_each_event_type_leads_to_its_status_with_the_event_period(
    kind: SubscriptionEventType, status: SubscriptionStatus
) -> None:
    state = state_after(event(kind))
    assert state.status is status
    assert (state.period_start, state.period_end) == (T0, T0 + timedelta(days=30))  # a cancellation keeps its end
    assert set(STATUS_AFTER) == set(SubscriptionEventType)  # every handled type has a status


def test_a_product_change_switches_to_the_new_product_when_named() -> None:
    assert state_after(event(SubscriptionEventType.PRODUCT_CHANGE, new_product_id="yearly")).product_id == "yearly"
    assert state_after(event(SubscriptionEventType.PRODUCT_CHANGE)).product_id == "monthly"
    assert state_after(event(SubscriptionEventType.RENEWAL, new_product_id="yearly")).product_id == "monthly"


def test_only_a_newer_event_supersedes_ties_going_to_the_greater_id() -> None:
    renewal = event(SubscriptionEventType.RENEWAL, at=T0, event_id="evt_b")
    assert supersedes(renewal, last_event_at=None, last_event_id=None)
    assert supersedes(renewal, last_event_at=T0 - timedelta(milliseconds=1), last_event_id="evt_z")
    assert supersedes(renewal, last_event_at=T0, last_event_id="evt_a")
    assert not supersedes(renewal, last_event_at=T0, last_event_id="evt_b")  # the same event again
    assert not supersedes(renewal, last_event_at=T0, last_event_id="evt_c")
    assert not supersedes(renewal, last_event_at=T0 + timedelta(milliseconds=1), last_event_id="evt_a")


def test_any_order_of_the_same_events_ends_in_the_same_state() -> None:
    kinds = list(SubscriptionEventType)
    events = [
        event(kind, at=T0 + timedelta(seconds=i // 2), event_id=f"evt_{i}", product_id=f"p{i}")
        for i, kind in enumerate(kinds)
    ]
    finals = set()
    for order in itertools.permutations(events):
        state = None
        for candidate in order:
            if state is None or supersedes(
                candidate, last_event_at=state.last_event_at, last_event_id=state.last_event_id
            ):
                state = state_after(candidate)
        finals.add(state)
    assert finals == {state_after(max(events, key=lambda e: (e.at, e.event_id)))}


def test_milliseconds_convert_exactly() -> None:
    assert from_millis(1_658_726_378_679) == datetime(2022, 7, 25, 5, 19, 38, 679_000, tzinfo=UTC)
    assert from_millis(MAX_MILLIS) == datetime(9999, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC)
