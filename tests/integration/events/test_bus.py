"""The event bus contract on real servers, once per provider (`broker`: NATS JetStream, Redis Streams): ack,
retries with backoff, batch isolation, dead letters with reasons, de-duplication of a re-published message,
ordering of one publisher's events, trace context in headers, a hung server; and what only one provider has
(JetStream's stream configuration, Redis entries that are not entries)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace

from services.devkit.servers import Nats
from services.event_catalog import CATALOG
from services.kit.events.bus import Event, Poison, RetryLater, backoff_delay
from services.kit.events.envelope import Envelope
from services.kit.events.jetstream import JetStreamBus
from services.kit.events.settings import EventSettings
from services.kit.events.tracing import current_headers
from services.kit.telemetry import configure_tracing
from tests.support.event_brokers import EventBroker, pipelined, user_event, vendor_event


def clerk(event: Event) -> str:
    return str(event.data.clerk_id)  # type: ignore[attr-defined]


async def eventually(predicate: Any, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


# ---- both providers ------------------------------------------------------------------------------------------------
async def test_publish_sets_message_id_and_trace_context(broker: EventBroker) -> None:
    configure_tracing("test")
    bus = await broker.bus()
    envelope = user_event(1)
    with trace.get_tracer("test").start_as_current_span("request") as span:
        await bus.publish(envelope, headers=current_headers())
        trace_id = format(span.get_span_context().trace_id, "032x")
    await bus.close()
    ((subject, payload, headers),) = await broker.events()
    assert subject == "events.user.created"
    assert payload == envelope.encode()
    assert headers["Nats-Msg-Id"] == envelope.message_id
    assert headers["Venta-Event-Type"] == "user.created"
    assert trace_id in headers["traceparent"]


async def test_a_republished_message_id_is_stored_once(broker: EventBroker) -> None:
    """The relay's publish-then-mark is safe: a row published again (alone or in a batch) is a duplicate."""
    bus = await broker.bus()
    envelope = user_event(1)
    first = await bus.publish(envelope)
    again = await bus.publish(envelope)
    assert (first.duplicate, again.duplicate, again.sequence) == (False, True, first.sequence)
    batch = [user_event(2), envelope, user_event(3)]
    outcomes = await bus.publish_pipelined(pipelined([*batch, batch[0]]))
    assert [getattr(o, "duplicate", o) for o in outcomes] == [False, True, False, True]
    assert outcomes[1].sequence == first.sequence  # type: ignore[union-attr]
    await bus.close()
    stored = [headers["Nats-Msg-Id"] for _, _, headers in await broker.events()]
    assert stored == [envelope.message_id, batch[0].message_id, batch[2].message_id]


async def test_handled_events_are_acknowledged_and_not_delivered_again(broker: EventBroker) -> None:
    bus = await broker.bus()
    seen: list[str] = []

    async def handler(events: Sequence[Event]) -> None:
        seen.extend(clerk(e) for e in events)

    for n in range(20):
        await bus.publish(user_event(n))
    subscription = await bus.subscribe(consumer="acks", pattern="user.>", handler=handler)
    await eventually(lambda: len(seen) == 20)
    status = await subscription.refresh_status()
    assert (status.consumed, status.lag, status.ack_pending, status.redelivered) == (20, 0, 0, 0)
    await bus.close()
    # the same durable consumer, in a new process: it goes on after the last acknowledged event
    bus = await broker.bus(consumer_ack_wait_s=1.0)
    again: list[str] = []

    async def second(events: Sequence[Event]) -> None:
        again.extend(clerk(e) for e in events)

    await bus.publish(user_event(20))
    await bus.subscribe(consumer="acks", pattern="user.>", handler=second)
    await eventually(lambda: again == ["user_20"])
    await asyncio.sleep(1.5)  # past the ack wait: nothing is redelivered
    assert again == ["user_20"] and sorted(seen) == sorted(f"user_{n}" for n in range(20))
    await bus.close()


async def test_retry_later_is_redelivered_after_a_growing_backoff(broker: EventBroker) -> None:
    bus = await broker.bus(consumer_retry_base_s=0.2, consumer_retry_max_s=1.0)
    attempts: list[tuple[float, int]] = []

    async def handler(events: Sequence[Event]) -> None:
        attempts.append((time.monotonic(), events[0].deliveries))
        if len(attempts) < 4:
            raise RetryLater("the index is down")

    await bus.publish(user_event(1))
    subscription = await bus.subscribe(consumer="backoff", pattern="user.>", handler=handler)
    await eventually(lambda: subscription.status.consumed == 1)
    assert [deliveries for _, deliveries in attempts] == [1, 2, 3, 4]
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(attempts)]
    # backoff_delay(n) lies in [ceiling / 2, ceiling], ceiling = 0.2 s, 0.4 s, 0.8 s
    for attempt, gap in enumerate(gaps, start=1):
        assert gap >= 0.2 * 2 ** (attempt - 1) / 2 - 0.02, gaps
    assert sum(gaps) < 6, gaps
    assert (subscription.status.failed, subscription.status.redelivered) == (3, 3)
    await bus.close()


async def test_retry_later_backs_off_then_succeeds_and_poison_is_isolated(broker: EventBroker) -> None:
    bus = await broker.bus(consumer_max_deliver=3)
    seen: list[str] = []
    attempts: dict[str, int] = {}
    flaky, broken, poison = "user_1", "user_2", "user_3"

    async def handler(events: Sequence[Event]) -> None:
        for event in events:
            name = clerk(event)
            attempts[name] = attempts.get(name, 0) + 1
            if name == flaky and attempts[name] < 3:
                raise RetryLater("backend down")
            if name == broken:
                raise ValueError("cannot handle this one")
            if name == poison:
                raise Poison("bad_vendor", "no such thing")
        seen.extend(clerk(e) for e in events)

    for n in range(10):
        await bus.publish(user_event(n))
    subscription = await bus.subscribe(consumer="test", pattern="user.>", handler=handler)
    await eventually(lambda: len(set(seen)) == 8 and subscription.status.dead_lettered == 2)
    assert sorted(set(seen)) == sorted(f"user_{n}" for n in range(10) if n not in (2, 3))
    dead = {headers["Venta-Dead-Letter-Reason"]: headers for _, _, headers in await broker.dead_letters()}
    assert dead["max_deliveries"]["Venta-Deliveries"] == "3", "retried up to max deliveries, then dead-lettered"
    assert dead["bad_vendor"]["Venta-Dead-Letter-Detail"] == "no such thing"
    assert {h["Venta-Consumer"] for h in dead.values()} == {"test"}
    assert {h["Venta-Original-Subject"] for h in dead.values()} == {"events.user.created"}
    assert attempts[poison] <= 2, "poison is dead-lettered the first time it is handled on its own, not retried"
    status = await subscription.refresh_status()
    assert (status.dead_letter_stream_total, status.lag, status.ack_pending) == (2, 0, 0)
    assert status.dead_letter_reasons == {"max_deliveries": 1, "bad_vendor": 1}
    assert status.redelivered >= 3
    await bus.close()


async def test_one_publishers_events_arrive_in_the_order_published(broker: EventBroker) -> None:
    """One stream for every type keeps a publisher's order; each consumer sees its own types, in that order."""
    bus = await broker.bus(consumer_batch=7)
    users, vendors = [user_event(n) for n in range(150)], [vendor_event(n) for n in range(150)]
    mixed = [e for pair in zip(users, vendors, strict=True) for e in pair]
    for start in range(0, len(mixed), 60):  # as the relay publishes: pipelined batches, one after the other
        assert all(not isinstance(o, BaseException) for o in await bus.publish_pipelined(pipelined(mixed[start:][:60])))
    got: dict[str, list[str]] = {"user": [], "vendor": []}

    def collect(kind: str) -> Any:
        async def handler(events: Sequence[Event]) -> None:
            got[kind].extend(e.envelope.message_id for e in events)

        return handler

    await bus.subscribe(consumer="users", pattern="user.>", handler=collect("user"))
    await bus.subscribe(consumer="vendors", pattern="vendor.>", handler=collect("vendor"))
    await eventually(lambda: len(got["user"]) == len(got["vendor"]) == 150)
    assert got["user"] == [e.message_id for e in users]
    assert got["vendor"] == [e.message_id for e in vendors]
    await bus.close()


async def test_undecodable_messages_are_dead_lettered_with_a_reason(broker: EventBroker) -> None:
    good = vendor_event(1)
    wrong_version = {**good.model_dump(mode="json", by_alias=True), "messageId": "v99", "version": 99}
    garbage: list[tuple[str, bytes]] = [
        ("events.vendor.updated", b"{this is not json"),
        ("events.vendor.updated", b"[1, 2, 3]"),
        ("events.vendor.created", good.encode()),  # a vendor.updated envelope on another type's subject
        ("events.vendor.updated", Envelope(**wrong_version).encode()),
        ("events.vendor.updated", b"\xff\xfe\x00"),
    ]
    for n, (subject, payload) in enumerate(garbage):
        await broker.publish_raw(subject, payload, {"Nats-Msg-Id": f"garbage-{n}"})
    bus = await broker.bus()
    handled: list[Event] = []

    async def handler(events: Sequence[Event]) -> None:
        handled.extend(events)

    subscription = await bus.subscribe(consumer="garbage", pattern="vendor.>", handler=handler)
    await bus.publish(good)
    await eventually(lambda: len(handled) == 1 and subscription.status.dead_lettered == len(garbage))
    reasons = sorted(headers["Venta-Dead-Letter-Reason"] for _, _, headers in await broker.dead_letters())
    assert reasons == sorted(["bad_json", "bad_envelope", "subject_mismatch", "unsupported_version", "bad_json"])
    assert {payload for _, payload, _ in await broker.dead_letters()} == {payload for _, payload in garbage}
    await bus.close()


async def test_a_consumer_goes_on_after_its_broker_died_under_a_batch(broker: EventBroker) -> None:
    """The batch in hand cannot be acknowledged to a dead server: it is delivered again once the server is back, and
    the consumer (not dead with its first failed ack) handles it and what came after."""
    bus = await broker.bus(consumer_ack_wait_s=1.0)
    first = [user_event(n) for n in range(5)]
    for envelope in first:
        await bus.publish(envelope)
    seen: list[str] = []
    killed = asyncio.Event()

    async def handler(events: Sequence[Event]) -> None:
        if not killed.is_set():
            await asyncio.to_thread(broker.server.kill)
            killed.set()
        seen.extend(e.envelope.message_id for e in events)

    await bus.subscribe(consumer="survivor", pattern="user.>", handler=handler)
    await asyncio.wait_for(killed.wait(), 15)
    await asyncio.sleep(1.5)  # the batch's acknowledgement fails (or waits) while the server is away
    await asyncio.to_thread(broker.server.start)
    later = user_event(5)
    await asyncio.wait_for(_published(bus, later), 30)
    expected = {e.message_id for e in [*first, later]}
    await eventually(lambda: expected <= set(seen), timeout_s=30)
    await bus.close()


async def _published(bus: Any, envelope: Envelope) -> None:
    """Publish, retrying while the client reconnects to the restarted server."""
    while True:
        try:
            await bus.publish(envelope)
            return
        except Exception:
            await asyncio.sleep(0.2)


async def test_pipelined_publish_to_a_hung_server_fails_the_batch_within_one_deadline(broker: EventBroker) -> None:
    """A server that stops answering mid-batch costs the relay one publish timeout, not one per message, and leaves
    the client usable (nats.py's pending-ack slots free), so publishing works again once the server does."""
    bus = await broker.bus(events_publish_timeout_s=0.5)
    batch = pipelined([user_event(n) for n in range(200)])
    broker.server.pause()
    try:
        started = time.monotonic()
        outcomes = await bus.publish_pipelined(batch)
        elapsed = time.monotonic() - started
    finally:
        broker.server.resume()
    assert all(isinstance(o, TimeoutError) for o in outcomes), {type(o).__name__ for o in outcomes}
    assert elapsed < 10, f"{elapsed:.1f} s for 200 lost acks (one deadline is 0.5 s; one per message would be 100 s)"
    await asyncio.sleep(0)  # the cancelled futures' done callbacks release their slots
    if isinstance(bus, JetStreamBus):
        assert bus.js.publish_async_pending() == 0
    again = await bus.publish_pipelined(batch)  # the same message ids: stored once, whatever the hung server kept
    assert all(not isinstance(o, BaseException) for o in again), again
    await bus.close()
    assert len(await broker.events()) == 200


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    delays = [backoff_delay(n, base_s=0.5, max_s=30) for n in range(1, 10)]
    assert 0.25 <= delays[0] <= 0.5 and 1.0 <= delays[2] <= 2.0
    assert all(d <= 30 for d in delays) and delays[-1] >= 15


# ---- JetStream only ------------------------------------------------------------------------------------------------
async def test_streams_are_created_idempotently_and_updated(nats: Nats) -> None:
    def on(**settings: Any) -> JetStreamBus:
        return JetStreamBus(EventSettings(nats_url=nats.url, **settings), CATALOG, client_name="test")

    bus = on()
    await bus.connect()
    await bus.ensure_streams()
    changed = on(events_duplicate_window_s=120)
    await changed.connect()
    info = await changed.js.stream_info("EVENTS")
    assert (info.config.subjects, info.config.duplicate_window) == (["events.>"], 120)
    assert (await changed.js.stream_info("DEADLETTER")).config.subjects == ["deadletter.>"]
    await changed.close()
    await bus.close()
