"""A durable JetStream pull consumer, the nats.py way: fetch(batch, timeout), then ack / nak(delay) / term.

The outcomes, batching and dead-lettering are the provider-independent `consuming.Consumer`; this module is only
JetStream's verbs for them: a durable pull consumer on the `EVENTS` stream filtered to its subject, `nak(delay)` for
a retry after a backoff, `term` after a dead letter is stored, `in_progress` while a batch is being handled, and the
consumer's info for the lag. The server's own `max_deliver` stays off: it would drop a message silently, so the
consumer counts deliveries and dead-letters itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from services.kit.events import metrics
from services.kit.events.bus import BatchHandler, ConsumerStatus
from services.kit.events.consuming import Consumer, Delivery

if TYPE_CHECKING:
    from services.kit.events.jetstream import JetStreamBus

BACKLOG_WAIT_S = 0.005


class JetStreamConsumer(Consumer[Msg]):
    system = "nats"

    def __init__(self, *, bus: JetStreamBus, consumer: str, pattern: str, handler: BatchHandler) -> None:
        super().__init__(
            settings=bus.settings, catalog=bus.catalog, consumer=consumer, pattern=pattern, handler=handler
        )
        self.bus = bus
        self._sub: JetStreamContext.PullSubscription | None = None

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            name=self.consumer,
            durable_name=self.consumer,
            filter_subject=self.subject,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.settings.consumer_ack_wait_s,
            max_deliver=-1,  # the consumer dead-letters itself: the server would drop a message silently
            max_ack_pending=max(1000, self.settings.consumer_batch * 4),
        )

    async def start(self) -> None:
        js = self.bus.js
        await js.add_consumer(self.settings.events_stream, config=self.config())  # create or update
        self._sub = await js.pull_subscribe_bind(durable=self.consumer, stream=self.settings.events_stream)
        self._start_loops()

    async def _release(self) -> None:
        if self._sub is not None:
            sub, self._sub = self._sub, None
            await sub.unsubscribe()

    async def _fetch(self) -> list[Delivery[Msg]]:
        """Wait for one message, then take what else is there at once (up to a batch).

        A single `fetch(batch, timeout)` waits until the batch is full or the timeout expires, which at a low rate
        adds up to the whole timeout to every change's latency; this returns as soon as there is work.
        """
        assert self._sub is not None
        try:
            first = await self._sub.fetch(1, timeout=self.settings.consumer_fetch_timeout_s)
        except (NatsTimeoutError, TimeoutError):
            return []
        more: list[Msg] = []
        if self.settings.consumer_batch > 1:
            with contextlib.suppress(NatsTimeoutError, TimeoutError):
                more = await self._sub.fetch(self.settings.consumer_batch - 1, timeout=BACKLOG_WAIT_S)
        return [_delivery(msg) for msg in [*first, *more]]

    async def _ack(self, deliveries: Sequence[Delivery[Msg]]) -> None:
        for delivery in deliveries:
            await delivery.message.ack()

    async def _nak(self, delivery: Delivery[Msg], delay_s: float) -> None:
        await delivery.message.nak(delay=delay_s)

    async def _term(self, delivery: Delivery[Msg]) -> None:
        await delivery.message.term()

    async def _in_progress(self, deliveries: Sequence[Delivery[Msg]]) -> None:
        for delivery in deliveries:
            with contextlib.suppress(Exception):
                await delivery.message.in_progress()

    async def _publish_dead_letter(self, subject: str, data: bytes, headers: dict[str, str], event_type: str) -> None:
        await self.bus.publish_raw(subject, data, headers, event_type=event_type)

    async def refresh_status(self) -> ConsumerStatus:
        info = await self._sub.consumer_info()  # type: ignore[union-attr]
        self.status.lag = int(info.num_pending or 0)
        self.status.ack_pending = int(info.num_ack_pending or 0)
        metrics.CONSUMER_LAG.labels(self.consumer).set(self.status.lag)
        metrics.CONSUMER_ACK_PENDING.labels(self.consumer).set(self.status.ack_pending)
        dead = await self.bus.js.stream_info(self.settings.deadletter_stream)
        self.status.dead_letter_stream_total = int(dead.state.messages)
        return self.status


def _delivery(msg: Msg) -> Delivery[Msg]:
    meta = msg.metadata
    return Delivery(
        message=msg,
        subject=msg.subject,
        data=msg.data,
        headers=dict(msg.headers or {}),
        sequence=meta.sequence.stream,
        deliveries=meta.num_delivered,
    )
