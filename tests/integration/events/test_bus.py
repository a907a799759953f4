"""The JetStream event bus on a real NATS server: streams, de-duplication, retries with backoff, batch isolation,
dead letters with reasons, and trace context in headers."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any

import nats as nats_py
from opentelemetry import trace

from services.devkit.servers import Nats
from services.event_catalog import CATALOG, UserData
from services.kit.events.bus import Event, Poison, RetryLater, backoff_delay
from services.kit.events.envelope import new_envelope
from services.kit.events.jetstream import JetStreamBus
from services.kit.events.settings import EventSettings
from services.kit.telemetry import configure_tracing


def user_event(n: int) -> Any:
    return new_envelope(
        "user.created",
        UserData(clerk_id=f"user_{n}", user_id=str(uuid.uuid4()), timestamp="2025-01-01T00:00:00Z"),
        version=1,
    )


async def bus_on(nats: Nats, **settings: Any) -> JetStreamBus:
    bus = JetStreamBus(
        EventSettings(nats_url=nats.url, consumer_retry_base_s=0.05, consumer_retry_max_s=0.2, **settings),
        CATALOG,
        client_name="test",
    )
    await bus.connect()
    return bus


async def eventually(predicate: Any, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_streams_are_created_idempotently_and_updated(nats: Nats) -> None:
    bus = await bus_on(nats)
    await bus.ensure_streams()
    changed = await bus_on(nats, events_duplicate_window_s=120)
    info = await changed.js.stream_info("EVENTS")
    assert (info.config.subjects, info.config.duplicate_window) == (["events.>"], 120)
    assert (await changed.js.stream_info("DEADLETTER")).config.subjects == ["deadletter.>"]
    await changed.close()
    await bus.close()


async def test_publish_sets_message_id_and_trace_context(nats: Nats) -> None:
    configure_tracing("test")
    bus = await bus_on(nats)
    envelope = user_event(1)
    with trace.get_tracer("test").start_as_current_span("request") as span:
        from services.kit.events.tracing import current_headers

        await bus.publish(envelope, headers=current_headers())
        trace_id = format(span.get_span_context().trace_id, "032x")
    nc = await nats_py.connect(nats.url)
    msg = await nc.jetstream().get_msg("EVENTS", 1)
    await nc.close()
    assert msg.subject == "events.user.created"
    assert msg.headers["Nats-Msg-Id"] == envelope.message_id
    assert trace_id in msg.headers["traceparent"]
    await bus.close()


async def test_retry_later_backs_off_then_succeeds_and_poison_is_isolated(nats: Nats) -> None:
    bus = await bus_on(nats, consumer_max_deliver=3)
    seen: list[str] = []
    attempts: dict[str, int] = {}
    flaky, broken, poison = "user_1", "user_2", "user_3"

    async def handler(events: Sequence[Event]) -> None:
        for event in events:
            clerk = event.data.clerk_id  # type: ignore[attr-defined]
            attempts[clerk] = attempts.get(clerk, 0) + 1
            if clerk == flaky and attempts[clerk] < 3:
                raise RetryLater("backend down")
            if clerk == broken:
                raise ValueError("cannot handle this one")
            if clerk == poison:
                raise Poison("bad_vendor", "no such thing")
        seen.extend(e.data.clerk_id for e in events)  # type: ignore[attr-defined]

    for n in range(10):
        await bus.publish(user_event(n))
    subscription = await bus.subscribe(consumer="test", pattern="user.>", handler=handler)
    await eventually(lambda: len(set(seen)) == 8 and subscription.status.dead_lettered == 2)
    assert sorted(set(seen)) == sorted(f"user_{n}" for n in range(10) if n not in (2, 3))
    nc = await nats_py.connect(nats.url)
    dead = {}
    for seq in (1, 2):
        msg = await nc.jetstream().get_msg("DEADLETTER", seq)
        dead[msg.headers["Venta-Dead-Letter-Reason"]] = msg.headers["Venta-Deliveries"]
    await nc.close()
    assert dead["max_deliveries"] == "3", "retried up to max deliveries, then dead-lettered"
    assert "bad_vendor" in dead
    assert attempts[poison] <= 2, "poison is dead-lettered the first time it is handled on its own, not retried"
    status = await subscription.refresh_status()
    assert (status.dead_letter_stream_total, status.lag) == (2, 0)
    assert status.dead_letter_reasons == {"max_deliveries": 1, "bad_vendor": 1}
    assert status.redelivered >= 3
    await bus.close()


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    delays = [backoff_delay(n, base_s=0.5, max_s=30) for n in range(1, 10)]
    assert 0.25 <= delays[0] <= 0.5 and 1.0 <= delays[2] <= 2.0
    assert all(d <= 30 for d in delays) and delays[-1] >= 15


async def test_pipelined_publish_to_a_hung_server_fails_the_batch_within_one_deadline(nats: Nats) -> None:
    """A server that stops answering mid-batch costs the relay one publish timeout, not one per message, and leaves
    nats.py's pending-ack slots free, so publishing works again once the server does."""
    bus = await bus_on(nats, events_publish_timeout_s=0.5)
    batch = [(e.subject, e.encode(), {"Nats-Msg-Id": e.message_id}, e.type) for e in map(user_event, range(200))]
    nats.pause()
    try:
        started = time.monotonic()
        outcomes = await bus.publish_pipelined(batch)
        elapsed = time.monotonic() - started
    finally:
        nats.resume()
    assert all(isinstance(o, TimeoutError) for o in outcomes), {type(o).__name__ for o in outcomes}
    assert elapsed < 10, f"{elapsed:.1f} s for 200 lost acks (one deadline is 0.5 s; one per message would be 100 s)"
    await asyncio.sleep(0)  # the cancelled futures' done callbacks release their slots
    assert bus.js.publish_async_pending() == 0
    again = await bus.publish_pipelined(batch)  # the same message ids: stored once, whatever the hung server kept
    assert all(not isinstance(o, BaseException) for o in again), again
    await bus.close()
