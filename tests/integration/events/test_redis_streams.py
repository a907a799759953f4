"""What only the Redis Streams provider has to get right, on a real Redis: entries in the stream that are not Venta
entries (written by hand, or garbage) become dead letters with a reason instead of stopping the consumer; a member
that died leaves its batch to the others after the ack wait; the duplicate window ends; a consumer group lost with
Redis's data is created again; lag and pending are the group's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from services.devkit.servers import Redis
from services.kit.events.bus import Event
from services.kit.events.redis_entries import stream_key
from tests.support.event_brokers import RedisBroker, user_event, vendor_event

EVENTS = stream_key("EVENTS")


@pytest.fixture
def redis_broker(tmp_path: Path) -> Iterator[RedisBroker]:
    server = Redis(tmp_path / "redis", durable=True)
    server.start()
    try:
        yield RedisBroker(server)
    finally:
        server.kill()


async def eventually(predicate: Any, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_malformed_entries_are_dead_lettered_with_a_reason_not_a_crash(redis_broker: RedisBroker) -> None:
    good = vendor_event(1)
    malformed: list[dict[bytes, bytes]] = [
        {b"foo": b"bar"},  # no subject at all
        {b"subject": b"\xff\xfe", b"data": good.encode()},  # a subject that is not text
        {b"subject": b"nonsense", b"data": good.encode()},  # not under events.>
        {b"subject": b"events.vendor.updated", b"headers": b"{}"},  # no data
        {b"subject": b"events.vendor.updated", b"data": good.encode(), b"headers": b"{not json"},
        {b"subject": b"events.vendor.updated", b"data": good.encode(), b"headers": b'["a list"]'},
        {b"subject": b"events.vendor.updated", b"data": good.encode(), b"headers": b'{"Nats-Msg-Id": 7}'},
        {b"subject": b"events.vendor.updated", b"data": b"\x00\x01 not an envelope", b"headers": b"\xff"},
    ]
    for fields in malformed:
        await redis_broker.xadd(fields)
    await redis_broker.xadd({b"subject": b"events.user.created", b"headers": b"oops"})  # another consumer's garbage
    bus = await redis_broker.bus()
    handled: list[Event] = []

    async def handler(events: Sequence[Event]) -> None:
        handled.extend(events)

    subscription = await bus.subscribe(consumer="garbage", pattern="vendor.>", handler=handler)
    await bus.publish(good)
    await eventually(lambda: len(handled) == 1 and subscription.status.dead_lettered == len(malformed))
    dead = await redis_broker.dead_letters()
    assert [headers["Venta-Dead-Letter-Reason"] for _, _, headers in dead] == ["bad_entry"] * len(malformed)
    details = [headers["Venta-Dead-Letter-Detail"] for _, _, headers in dead]
    assert details[0] == "no readable `subject` field" and "not under events.>" in details[2], details
    assert "no `data` field" in details[3] and "not JSON" in details[4] and "object of strings" in details[5], details
    assert {headers["Venta-Consumer"] for _, _, headers in dead} == {"garbage"}
    assert dead[4][1] == good.encode(), "the dead letter keeps the entry's bytes"
    assert handled[0].envelope == good
    status = await subscription.refresh_status()
    assert (status.lag, status.ack_pending) == (0, 0), "every entry settled: handled, dead-lettered, or not ours"
    await bus.close()


async def test_a_departed_members_batch_is_claimed_by_another_after_the_ack_wait(redis_broker: RedisBroker) -> None:
    bus = await redis_broker.bus(consumer_ack_wait_s=1.0)
    for n in range(5):
        await bus.publish(user_event(n))
    client = redis_broker.client()
    await client.xgroup_create(EVENTS, "claims", id="0")
    taken: Any = await client.xreadgroup("claims", "a-member-that-died", {EVENTS: ">"}, count=10)
    assert len(taken[0][1]) == 5  # delivered to a member that will never acknowledge them
    handled: list[Event] = []

    async def handler(events: Sequence[Event]) -> None:
        handled.extend(events)

    started = time.monotonic()
    subscription = await bus.subscribe(consumer="claims", pattern="user.>", handler=handler)
    await eventually(lambda: len(handled) == 5)
    assert time.monotonic() - started > 0.5, "not before the ack wait"
    assert [e.deliveries for e in handled] == [2] * 5
    assert subscription.status.redelivered == 5
    await bus.close()
    members: Any = await client.xinfo_consumers(EVENTS, "claims")
    assert [(m["name"], m["pending"]) for m in members] == [(b"a-member-that-died", 0)], "a stopped member leaves"
    await client.aclose()


async def test_pending_entries_the_retention_trimmed_away_are_forgotten(redis_broker: RedisBroker) -> None:
    """Redis 6.2 keeps a trimmed entry in the group's pending list forever (claimed, never delivered): the consumer
    acknowledges what lies below the stream's first entry, so pending counts only what can still be delivered."""
    bus = await redis_broker.bus()
    for n in range(3):
        await bus.publish(user_event(n))
    client = redis_broker.client()
    await client.xgroup_create(EVENTS, "trimmed", id="0")
    await client.xreadgroup("trimmed", "a-member-that-died", {EVENTS: ">"}, count=10)
    await client.xtrim(EVENTS, maxlen=0)  # what the retention does to entries older than a week
    await client.aclose()
    later = user_event(3)
    await bus.publish(later)
    handled: list[Event] = []

    async def handler(events: Sequence[Event]) -> None:
        handled.extend(events)

    subscription = await bus.subscribe(consumer="trimmed", pattern="user.>", handler=handler)
    await eventually(lambda: len(handled) == 1)
    for _ in range(40):  # the first status refresh (at start) tidies; wait for it
        status = await subscription.refresh_status()
        if status.ack_pending == 0:
            break
        await asyncio.sleep(0.1)
    assert (status.ack_pending, status.lag) == (0, 0)
    assert handled[0].envelope == later
    await bus.close()


async def test_the_duplicate_window_ends(redis_broker: RedisBroker) -> None:
    bus = await redis_broker.bus(events_duplicate_window_s=0.5)
    envelope = user_event(1)
    first = await bus.publish(envelope)
    assert (await bus.publish(envelope)).duplicate
    await asyncio.sleep(0.7)
    later = await bus.publish(envelope)
    assert not later.duplicate and later.sequence > first.sequence
    await bus.close()


async def test_a_consumer_group_lost_with_redis_data_is_created_again(redis_broker: RedisBroker) -> None:
    bus = await redis_broker.bus()
    handled: list[str] = []

    async def handler(events: Sequence[Event]) -> None:
        handled.extend(e.envelope.message_id for e in events)

    await bus.subscribe(consumer="lost", pattern="user.>", handler=handler)
    before = user_event(1)
    await bus.publish(before)
    await eventually(lambda: handled == [before.message_id])
    client = redis_broker.client()
    await client.xgroup_destroy(EVENTS, "lost")
    await client.aclose()
    after = user_event(2)
    await bus.publish(after)
    await eventually(lambda: after.message_id in handled)  # at least once: `before` may come again
    await bus.close()


async def test_lag_and_pending_are_the_groups(redis_broker: RedisBroker) -> None:
    bus = await redis_broker.bus(consumer_batch=10)
    for n in range(50):
        await bus.publish(user_event(n))
    release = asyncio.Event()

    async def handler(events: Sequence[Event]) -> None:
        await release.wait()

    subscription = await bus.subscribe(consumer="lagging", pattern="user.>", handler=handler)
    await eventually(lambda: subscription.status.ack_pending == 10)
    status = await subscription.refresh_status()
    assert (status.lag, status.ack_pending, status.dead_letter_stream_total) == (40, 10, 0)
    release.set()
    await eventually(lambda: subscription.status.consumed == 50)
    status = await subscription.refresh_status()
    assert (status.lag, status.ack_pending) == (0, 0)
    await bus.close()
