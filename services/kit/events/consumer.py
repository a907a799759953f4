"""A durable JetStream pull consumer, the nats.py way: fetch(batch, timeout), then ack / nak(delay) / term.

Outcomes per message: handled -> `ack`; `RetryLater` -> `nak(delay)` with exponential backoff, for as long as it
takes (an outage of the backend is not the event's fault); another error -> `nak(delay)` until the consumer's
maximum deliveries, then dead letter; undecodable or `Poison` -> dead letter at once. Dead-lettering publishes the
original bytes to `deadletter.events.<type>` with the reason in headers, and only then `term`s the message: if the
dead-letter publish fails, the message is redelivered instead, so nothing is ever dropped silently. While a batch
is being handled the consumer sends `in_progress` so a slow backend does not trigger redeliveries. `stop()` lets the
current batch finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from services.kit.events import metrics
from services.kit.events.bus import BatchHandler, ConsumerStatus, Event, Poison, RetryLater, backoff_delay
from services.kit.events.envelope import SUBJECT_PREFIX, UndecodableEvent, decode
from services.kit.events.tracing import processing
from services.kit.metrics import trace_exemplar

if TYPE_CHECKING:
    from services.kit.events.jetstream import JetStreamBus

log = logging.getLogger("venta.events.consumer")

# The headers a dead letter carries besides the original's own (docs/events.md, "Dead letters").
REASON_HEADER = "Venta-Dead-Letter-Reason"
DETAIL_HEADER = "Venta-Dead-Letter-Detail"
ORIGINAL_SUBJECT_HEADER = "Venta-Original-Subject"
ORIGINAL_SEQUENCE_HEADER = "Venta-Original-Sequence"
ORIGINAL_ID_HEADER = "Venta-Original-Msg-Id"  # the original's Nats-Msg-Id (the dead letter has one of its own)
CONSUMER_HEADER = "Venta-Consumer"
DELIVERIES_HEADER = "Venta-Deliveries"
DEAD_LETTER_HEADERS = (
    REASON_HEADER,
    DETAIL_HEADER,
    ORIGINAL_SUBJECT_HEADER,
    ORIGINAL_SEQUENCE_HEADER,
    ORIGINAL_ID_HEADER,
    CONSUMER_HEADER,
    DELIVERIES_HEADER,
)
BACKLOG_WAIT_S = 0.005
_UNSAFE_HEADER = re.compile(r"[\r\n\x00]")


def _header_value(value: str) -> str:
    return _UNSAFE_HEADER.sub(" ", value)[:512]


class JetStreamConsumer:
    def __init__(self, *, bus: JetStreamBus, consumer: str, pattern: str, handler: BatchHandler) -> None:
        self.bus = bus
        self.settings = bus.settings
        self.consumer = consumer
        self.subject = SUBJECT_PREFIX + pattern
        self.handler = handler
        self.status = ConsumerStatus(consumer=consumer)
        self._sub: JetStreamContext.PullSubscription | None = None
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

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
        metrics.initialise_consumer(self.consumer, self.subject, self.bus.catalog)
        self._tasks = [
            asyncio.create_task(self._run(), name=f"consumer-{self.consumer}"),
            asyncio.create_task(self._watch(), name=f"consumer-{self.consumer}-status"),
        ]

    async def stop(self, timeout_s: float = 15.0) -> None:
        """Stop fetching; the batch in hand is finished (acked or nakked) within `timeout_s`."""
        self._stopping.set()
        tasks, self._tasks = self._tasks, []
        for task in tasks[1:]:
            task.cancel()
        if tasks:
            try:
                await asyncio.wait_for(tasks[0], timeout_s)
            except (TimeoutError, asyncio.CancelledError):
                pass
        if self._sub is not None:
            sub, self._sub = self._sub, None
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    # ---- the loop --------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                messages = await self._fetch()
            except (NatsTimeoutError, TimeoutError):
                failures = 0
                continue
            except Exception as exc:  # noqa: BLE001 - broker trouble: wait, the client reconnects by itself
                failures += 1
                self.status.last_error = f"fetch: {type(exc).__name__}: {exc}"
                if failures == 1 or failures % 20 == 0:
                    log.warning("fetch failed (%s), retrying", exc)
                await asyncio.sleep(min(5.0, 0.1 * 2 ** min(failures, 6)))
                continue
            failures = 0
            started = time.perf_counter()
            exemplar = await self._handle(messages)
            metrics.EVENT_HANDLING_LATENCY.labels(self.consumer).observe(time.perf_counter() - started, exemplar)

    async def _fetch(self) -> list[Msg]:
        """Wait for one message, then take what else is there at once (up to a batch).

        A single `fetch(batch, timeout)` waits until the batch is full or the timeout expires, which at a low rate
        adds up to the whole timeout to every change's latency; this returns as soon as there is work.
        """
        assert self._sub is not None
        first = await self._sub.fetch(1, timeout=self.settings.consumer_fetch_timeout_s)
        if self.settings.consumer_batch == 1:
            return first
        try:
            more = await self._sub.fetch(self.settings.consumer_batch - 1, timeout=BACKLOG_WAIT_S)
        except (NatsTimeoutError, TimeoutError):
            more = []
        return [*first, *more]

    async def _handle(self, messages: Sequence[Msg]) -> dict[str, str] | None:
        """Decode, dispatch, settle each message; the trace of the handling, as the latency's exemplar."""
        decoded: list[tuple[Msg, Event]] = []
        for msg in messages:
            meta = msg.metadata
            if meta.num_delivered > 1:
                self.status.redelivered += 1
                metrics.EVENTS_REDELIVERED.labels(self.consumer, self._type_of(msg)).inc()
            try:
                envelope = decode(msg.data, msg.subject)
                data = self.bus.catalog.parse(envelope)
            except UndecodableEvent as exc:
                await self._dead_letter(msg, exc.reason, exc.detail)
                continue
            headers = dict(msg.headers or {})
            event = Event(envelope, data, msg.subject, headers, meta.sequence.stream, meta.num_delivered)
            decoded.append((msg, event))
        return await self._dispatch(decoded) if decoded else None

    async def _dispatch(self, batch: list[tuple[Msg, Event]]) -> dict[str, str] | None:
        heartbeat = asyncio.create_task(self._keep_alive([msg for msg, _ in batch]))  # noqa: RUF006 - awaited below
        events = [event for _, event in batch]
        exemplar = None
        try:
            with processing(events, consumer=self.consumer, subject=self.subject):
                exemplar = trace_exemplar()
                await self.handler(events)
        except RetryLater as exc:
            await self._retry_all(batch, exc)
        except Exception as exc:  # noqa: BLE001 - isolate the culprit by handling the batch one event at a time
            if len(batch) == 1:
                await self._failed(*batch[0], exc)
            else:
                log.info("batch of %d failed (%s); handling one by one", len(batch), exc)
                await self._one_by_one(batch)
        else:
            await self._acked(batch)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        return exemplar

    async def _one_by_one(self, batch: list[tuple[Msg, Event]]) -> None:
        for index, (msg, event) in enumerate(batch):
            try:
                with processing([event], consumer=self.consumer, subject=self.subject):
                    await self.handler([event])
            except RetryLater as exc:
                await self._retry_all(batch[index:], exc)
                return
            except Exception as exc:  # noqa: BLE001 - decided per message below
                await self._failed(msg, event, exc)
            else:
                await self._acked([(msg, event)])

    # ---- outcomes --------------------------------------------------------------------------------------------
    async def _acked(self, batch: Sequence[tuple[Msg, Event]]) -> None:
        for msg, event in batch:
            await msg.ack()
            metrics.EVENTS_CONSUMED.labels(self.consumer, metrics.type_label(event.envelope.type)).inc()
        self.status.consumed += len(batch)

    def _delay(self, deliveries: int, at_least: float | None = None) -> float:
        delay = backoff_delay(
            deliveries, base_s=self.settings.consumer_retry_base_s, max_s=self.settings.consumer_retry_max_s
        )
        return max(delay, at_least or 0.0)

    async def _retry_all(self, batch: Sequence[tuple[Msg, Event]], exc: RetryLater) -> None:
        self.status.last_error = f"retry later: {exc}"
        for msg, event in batch:
            self.status.failed += 1
            metrics.EVENTS_FAILED.labels(self.consumer, metrics.type_label(event.envelope.type)).inc()
            await msg.nak(delay=self._delay(event.deliveries, exc.delay_s))

    async def _failed(self, msg: Msg, event: Event, exc: Exception) -> None:
        self.status.failed += 1
        metrics.EVENTS_FAILED.labels(self.consumer, metrics.type_label(event.envelope.type)).inc()
        if isinstance(exc, Poison):
            await self._dead_letter(msg, exc.reason, exc.detail)
        elif isinstance(exc, RetryLater):
            await msg.nak(delay=self._delay(event.deliveries, exc.delay_s))
        elif event.deliveries >= self.settings.consumer_max_deliver:
            await self._dead_letter(msg, "max_deliveries", f"{type(exc).__name__}: {exc}")
        else:
            self.status.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("event %s failed (delivery %d): %s", event.envelope.message_id, event.deliveries, exc)
            await msg.nak(delay=self._delay(event.deliveries))

    def _type_of(self, msg: Msg) -> str:
        header = (msg.headers or {}).get("Venta-Event-Type")
        return metrics.type_label(header or msg.subject.removeprefix(SUBJECT_PREFIX))

    async def _dead_letter(self, msg: Msg, reason: str, detail: str) -> None:
        event_type = self._type_of(msg)
        meta = msg.metadata
        original = dict(msg.headers or {})
        original_id = original.pop("Nats-Msg-Id", None)
        headers = {
            **original,
            "Nats-Msg-Id": f"dlq:{self.consumer}:{meta.sequence.stream}",
            REASON_HEADER: _header_value(reason),
            DETAIL_HEADER: _header_value(detail),
            ORIGINAL_SUBJECT_HEADER: _header_value(msg.subject),
            ORIGINAL_SEQUENCE_HEADER: str(meta.sequence.stream),
            CONSUMER_HEADER: self.consumer,
            DELIVERIES_HEADER: str(meta.num_delivered),
        }
        if original_id:
            headers[ORIGINAL_ID_HEADER] = _header_value(original_id)
        try:
            await self.bus.publish_raw(f"deadletter.events.{event_type}", msg.data, headers, event_type=event_type)
        except Exception as exc:  # noqa: BLE001 - never drop: leave it for redelivery and try again later
            log.warning("dead-letter publish failed (%s); message %d kept", exc, meta.sequence.stream)
            await msg.nak(delay=self._delay(meta.num_delivered))
            return
        await msg.term()
        self.status.dead_lettered += 1
        self.status.dead_letter_reasons[reason] = self.status.dead_letter_reasons.get(reason, 0) + 1
        metrics.EVENTS_DEAD_LETTERED.labels(self.consumer, event_type, reason).inc()
        log.warning(
            "dead-lettered message %d (%s): %s",
            meta.sequence.stream,
            reason,
            detail,
            extra={"reason": reason, "subject": msg.subject},
        )

    # ---- liveness and lag ------------------------------------------------------------------------------------
    async def _keep_alive(self, messages: Sequence[Msg]) -> None:
        interval = max(0.5, self.settings.consumer_ack_wait_s / 3)
        while True:
            await asyncio.sleep(interval)
            for msg in messages:
                with contextlib.suppress(Exception):
                    await msg.in_progress()

    async def refresh_status(self) -> ConsumerStatus:
        info = await self._sub.consumer_info()  # type: ignore[union-attr]
        self.status.lag = int(info.num_pending or 0)
        self.status.ack_pending = int(info.num_ack_pending or 0)
        metrics.CONSUMER_LAG.labels(self.consumer).set(self.status.lag)
        metrics.CONSUMER_ACK_PENDING.labels(self.consumer).set(self.status.ack_pending)
        dead = await self.bus.js.stream_info(self.settings.deadletter_stream)
        self.status.dead_letter_stream_total = int(dead.state.messages)
        return self.status

    async def _watch(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(Exception):
                await self.refresh_status()
            await asyncio.sleep(2.0)
