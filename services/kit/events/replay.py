"""Reading a stretch of the event stream again, from a sequence number up to what is there now.

Used by the full re-index: the index built from a snapshot misses changes that were applied to the old index while the
new one was being built, so after the swap they are replayed from the stream position noted before the snapshot.
JetStream-specific on purpose (`factory.require_jetstream`): with `VENTA_EVENTS_PROVIDER=redis` the re-index refuses to
run. The replay uses an ephemeral consumer that acknowledges nothing and disappears after use; messages that cannot be
decoded are skipped here (the durable consumers dead-letter them).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from services.kit.events.bus import Event
from services.kit.events.envelope import SUBJECT_PREFIX, UndecodableEvent, decode
from services.kit.events.jetstream import JetStreamBus


async def last_sequence(bus: JetStreamBus) -> int:
    info = await bus.js.stream_info(bus.settings.events_stream)
    return int(info.state.last_seq)


async def replay(bus: JetStreamBus, *, pattern: str, after: int, batch: int = 500) -> AsyncIterator[list[Event]]:
    """Batches of the events matching `pattern` stored after sequence `after`, up to the stream's end at the call."""
    end = await last_sequence(bus)
    if end <= after:
        return
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=after + 1,
        ack_policy=AckPolicy.NONE,
        inactive_threshold=60.0,
    )
    subscription = await bus.js.pull_subscribe(
        SUBJECT_PREFIX + pattern, stream=bus.settings.events_stream, config=config
    )
    try:
        while True:
            try:
                messages = await subscription.fetch(batch, timeout=1.0)
            except (NatsTimeoutError, TimeoutError):
                return
            events = []
            done = False
            for msg in messages:
                meta = msg.metadata
                if meta.sequence.stream > end:
                    done = True
                    break
                try:
                    envelope = decode(msg.data, msg.subject)
                    events.append(
                        Event(
                            envelope,
                            bus.catalog.parse(envelope),
                            msg.subject,
                            dict(msg.headers or {}),
                            meta.sequence.stream,
                            meta.num_delivered,
                        )
                    )
                except UndecodableEvent:
                    continue
                done = meta.sequence.stream >= end or meta.num_pending == 0
            if events:
                yield events
            if done:
                return
    finally:
        await subscription.unsubscribe()
