"""The rules of a dead letter as a record, without a server: what counts as its type and original id, which filters
select it, and what a replay of it carries (a new message id that is the same for every replay of it)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from services.kit.events.deadletter_records import (
    BadSelection,
    DeadLetter,
    Filters,
    replay_headers,
    replay_message_id,
)

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def letter(sequence: int = 7, *, age: timedelta = timedelta(minutes=5), **headers: str) -> DeadLetter:
    base = {
        "Nats-Msg-Id": f"dlq:search-sync:{sequence + 100}",
        "Nats-Expected-Stream": "DEADLETTER",
        "Venta-Dead-Letter-Reason": "max_deliveries",
        "Venta-Dead-Letter-Detail": "ValueError: boom",
        "Venta-Original-Subject": "events.vendor.updated",
        "Venta-Original-Sequence": str(sequence + 100),
        "Venta-Original-Msg-Id": "original-1",
        "Venta-Consumer": "search-sync",
        "Venta-Deliveries": "10",
        "Venta-Event-Type": "vendor.updated",
        "traceparent": "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01",
    }
    payload = json.dumps({"type": "vendor.updated", "messageId": "envelope-1"}).encode()
    return DeadLetter(
        sequence=sequence,
        subject="deadletter.events.vendor.updated",
        dead_lettered_at=NOW - age,
        headers={**base, **headers},
        payload=payload,
    )


def test_the_record_reads_its_headers() -> None:
    dead = letter()
    assert (dead.event_type, dead.reason, dead.consumer, dead.deliveries, dead.original_sequence) == (
        "vendor.updated",
        "max_deliveries",
        "search-sync",
        10,
        107,
    )
    assert dead.message_id == "original-1" and dead.replayed_from is None and dead.replayable
    unknown = letter(**{"Venta-Original-Subject": "events.vendor.exploded"})
    assert unknown.event_type == "vendor.exploded", "the type it was published as, known or not"


def test_the_original_id_falls_back_to_the_envelope_for_older_dead_letters() -> None:
    kept = {k: v for k, v in letter().headers.items() if k != "Venta-Original-Msg-Id"}
    older = dataclasses.replace(letter(), headers=kept)
    assert older.message_id == "envelope-1"
    assert replay_headers(older, "DEADLETTER")["Venta-Replayed-From"] == "envelope-1"


def test_a_replay_carries_the_originals_headers_a_new_id_and_where_it_came_from() -> None:
    headers = replay_headers(letter(), "DEADLETTER")
    assert headers == {
        "Venta-Event-Type": "vendor.updated",
        "traceparent": "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01",
        "Nats-Msg-Id": replay_message_id(letter(), "DEADLETTER"),
        "Venta-Replayed-From": "original-1",
    }
    assert headers["Nats-Msg-Id"] not in ("original-1", "envelope-1"), "the stream would drop it as a duplicate"
    again = letter(**{"Venta-Replayed-From": "first-of-all", "Venta-Original-Msg-Id": headers["Nats-Msg-Id"]})
    assert replay_headers(again, "DEADLETTER")["Venta-Replayed-From"] == "first-of-all", "kept across replays"


def test_the_replay_id_is_the_same_for_one_dead_letter_and_differs_between_dead_letters() -> None:
    one = replay_message_id(letter(7), "DEADLETTER")
    assert one == replay_message_id(letter(7), "DEADLETTER"), "a repeated replay is de-duplicated by the stream"
    assert one != replay_message_id(letter(8), "DEADLETTER")
    assert one != replay_message_id(letter(7, age=timedelta(days=1)), "DEADLETTER"), "a recreated stream's seq 7"


@pytest.mark.parametrize(
    ("filters", "selected"),
    [
        (Filters(), True),
        (Filters(types=("vendor.updated",)), True),
        (Filters(types=("vendor.*",)), True),
        (Filters(types=("user.*", "vendor.up?ated")), True),
        (Filters(types=("vendor",)), False),
        (Filters(reasons=("bad_json",)), False),
        (Filters(reasons=("bad_json", "max_deliveries")), True),
        (Filters(consumers=("gateway-vendor-cache",)), False),
        (Filters(older_than=timedelta(minutes=1)), True),
        (Filters(older_than=timedelta(hours=1)), False),
        (Filters(newer_than=timedelta(minutes=1)), False),
        (Filters(older_than=timedelta(minutes=1), newer_than=timedelta(hours=1)), True),
        (Filters(types=("vendor.*",), reasons=("bad_json",)), False),
    ],
)
def test_filters(filters: Filters, selected: bool) -> None:
    assert filters.matches(letter(), NOW) is selected


def test_an_empty_age_window_is_refused() -> None:
    with pytest.raises(BadSelection, match="no dead letter is both"):
        Filters(older_than=timedelta(hours=2), newer_than=timedelta(hours=1))
