"""What a durable consumer does with what it fetched, whatever the broker: decode, dispatch, settle, dead-letter.

Both providers' consumers (`consumer.JetStreamConsumer`, `redis_consumer.RedisStreamsConsumer`) are this class plus
the broker's verbs: fetch, ack, nak after a delay, term, in-progress, publish a dead letter, read the lag. So the
rules in `bus` hold identically on both: handled -> ack; `RetryLater` -> nak with exponential backoff, for as long
as it takes (an outage of the backend is not the event's fault); another error -> nak until the maximum deliveries,
then dead letter; undecodable or `Poison` -> dead letter at once; a failed batch is handled again one event at a
time to isolate the culprit. Dead-lettering publishes the original bytes to `deadletter.events.<type>` with the
reason in headers, and only then `term`s the message: if that publish fails, the message is redelivered instead, so
nothing is ever dropped silently. While a batch is being handled the consumer keeps it alive (`in_progress`), so a
slow backend does not trigger redeliveries. `stop()` lets the current batch finish.

It must never talk to a broker itself: what differs between brokers is an abstract method.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from services.kit.events import metrics
from services.kit.events.bus import (
    EVENT_TYPE_HEADER,
    MSG_ID_HEADER,
    BatchHandler,
    ConsumerStatus,
    Event,
    Poison,
    RetryLater,
    backoff_delay,
)
from services.kit.events.catalog import Catalog
from services.kit.events.envelope import SUBJECT_PREFIX, UndecodableEvent, decode
from services.kit.events.settings import EventSettings
from services.kit.events.tracing import processing
from services.kit.metrics import trace_exemplar

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
DEADLETTER_PREFIX = "deadletter."
STATUS_EVERY_S = 2.0
_UNSAFE_HEADER = re.compile(r"[\r\n\x00]")

M = TypeVar("M")  # the broker's own handle of a message (a nats `Msg`, a Redis entry id)


def header_value(value: str) -> str:
    return _UNSAFE_HEADER.sub(" ", value)[:512]


@dataclass(frozen=True)
class Delivery(Generic[M]):
    """One message as the broker handed it over, not decoded yet."""

    message: M
    subject: str
    data: bytes
    headers: Mapping[str, str]
    sequence: int  # its position in the events stream
    deliveries: int  # 1 the first time


class Consumer(ABC, Generic[M]):
    """A durable consumer of `events.<pattern>`: the loop and the outcomes; subclasses bring the broker's verbs."""

    system = "nats"  # `messaging.system` of its spans

    def __init__(
        self, *, settings: EventSettings, catalog: Catalog, consumer: str, pattern: str, handler: BatchHandler
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.consumer = consumer
        self.subject = SUBJECT_PREFIX + pattern
        self.handler = handler
        self.status = ConsumerStatus(consumer=consumer)
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # ---- the broker's verbs ----------------------------------------------------------------------------------
    @abstractmethod
    async def start(self) -> None:
        """Create or bind the durable consumer on the broker, then `_start_loops()`."""

    @abstractmethod
    async def _fetch(self) -> Sequence[Delivery[M]]:
        """Wait up to the fetch timeout for one message, then take what else is there at once (up to a batch)."""

    @abstractmethod
    async def _ack(self, deliveries: Sequence[Delivery[M]]) -> None: ...

    @abstractmethod
    async def _nak(self, delivery: Delivery[M], delay_s: float) -> None:
        """Deliver it again (to any member of the consumer) after `delay_s`."""

    @abstractmethod
    async def _term(self, delivery: Delivery[M]) -> None:
        """Never deliver it again (it was dead-lettered)."""

    @abstractmethod
    async def _in_progress(self, deliveries: Sequence[Delivery[M]]) -> None:
        """Still working on these: do not redeliver them yet."""

    @abstractmethod
    async def _publish_dead_letter(self, subject: str, data: bytes, headers: dict[str, str], event_type: str) -> None:
        """Store a dead letter (raise if it may not be stored: the original is then redelivered, never dropped)."""

    @abstractmethod
    async def refresh_status(self) -> ConsumerStatus:
        """Read lag, pending acknowledgements and the dead-letter stream's size from the broker into `status`."""

    async def _release(self) -> None:
        """Give the broker's subscription back once the loop has stopped (nothing by default)."""

    # ---- lifecycle -------------------------------------------------------------------------------------------
    def _start_loops(self) -> None:
        metrics.initialise_consumer(self.consumer, self.subject, self.catalog)
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
        with contextlib.suppress(Exception):
            await self._release()

    # ---- the loop --------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            doing = "fetch"
            try:
                deliveries = await self._fetch()
                if deliveries:
                    doing = "settle"
                    started = time.perf_counter()
                    exemplar = await self._handle(deliveries)
                    latency = time.perf_counter() - started
                    metrics.EVENT_HANDLING_LATENCY.labels(self.consumer).observe(latency, exemplar)
            except Exception as exc:  # noqa: BLE001 - broker trouble: wait, the client reconnects by itself
                # what was fetched and not settled stays unacknowledged: the broker delivers it again after ack_wait
                failures += 1
                self.status.last_error = f"{doing}: {type(exc).__name__}: {exc}"
                if failures == 1 or failures % 20 == 0:
                    log.warning("%s failed (%s), retrying", doing, exc)
                await asyncio.sleep(min(5.0, 0.1 * 2 ** min(failures, 6)))
                continue
            failures = 0

    async def _handle(self, deliveries: Sequence[Delivery[M]]) -> dict[str, str] | None:
        """Decode, dispatch, settle each message; the trace of the handling, as the latency's exemplar."""
        decoded: list[tuple[Delivery[M], Event]] = []
        for delivery in deliveries:
            if delivery.deliveries > 1:
                self.status.redelivered += 1
                metrics.EVENTS_REDELIVERED.labels(self.consumer, self._type_of(delivery)).inc()
            try:
                envelope = decode(delivery.data, delivery.subject)
                data = self.catalog.parse(envelope)
            except UndecodableEvent as exc:
                await self._dead_letter(delivery, exc.reason, exc.detail)
                continue
            headers = dict(delivery.headers)
            event = Event(envelope, data, delivery.subject, headers, delivery.sequence, delivery.deliveries)
            decoded.append((delivery, event))
        return await self._dispatch(decoded) if decoded else None

    def _processing(self, events: Sequence[Event]) -> contextlib.AbstractContextManager[None]:
        return processing(events, consumer=self.consumer, subject=self.subject, system=self.system)

    async def _dispatch(self, batch: list[tuple[Delivery[M], Event]]) -> dict[str, str] | None:
        heartbeat = asyncio.create_task(self._keep_alive([d for d, _ in batch]))  # noqa: RUF006 - awaited below
        events = [event for _, event in batch]
        exemplar = None
        try:
            with self._processing(events):
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

    async def _one_by_one(self, batch: list[tuple[Delivery[M], Event]]) -> None:
        for index, (delivery, event) in enumerate(batch):
            try:
                with self._processing([event]):
                    await self.handler([event])
            except RetryLater as exc:
                await self._retry_all(batch[index:], exc)
                return
            except Exception as exc:  # noqa: BLE001 - decided per message below
                await self._failed(delivery, event, exc)
            else:
                await self._acked([(delivery, event)])

    # ---- outcomes --------------------------------------------------------------------------------------------
    async def _acked(self, batch: Sequence[tuple[Delivery[M], Event]]) -> None:
        await self._ack([delivery for delivery, _ in batch])
        for _, event in batch:
            metrics.EVENTS_CONSUMED.labels(self.consumer, metrics.type_label(event.envelope.type)).inc()
        self.status.consumed += len(batch)

    def _delay(self, deliveries: int, at_least: float | None = None) -> float:
        delay = backoff_delay(
            deliveries, base_s=self.settings.consumer_retry_base_s, max_s=self.settings.consumer_retry_max_s
        )
        return max(delay, at_least or 0.0)

    async def _retry_all(self, batch: Sequence[tuple[Delivery[M], Event]], exc: RetryLater) -> None:
        self.status.last_error = f"retry later: {exc}"
        for delivery, event in batch:
            self.status.failed += 1
            metrics.EVENTS_FAILED.labels(self.consumer, metrics.type_label(event.envelope.type)).inc()
            await self._nak(delivery, self._delay(event.deliveries, exc.delay_s))

    async def _failed(self, delivery: Delivery[M], event: Event, exc: Exception) -> None:
        self.status.failed += 1
        metrics.EVENTS_FAILED.labels(self.consumer, metrics.type_label(event.envelope.type)).inc()
        if isinstance(exc, Poison):
            await self._dead_letter(delivery, exc.reason, exc.detail)
        elif isinstance(exc, RetryLater):
            await self._nak(delivery, self._delay(event.deliveries, exc.delay_s))
        elif event.deliveries >= self.settings.consumer_max_deliver:
            await self._dead_letter(delivery, "max_deliveries", f"{type(exc).__name__}: {exc}")
        else:
            self.status.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("event %s failed (delivery %d): %s", event.envelope.message_id, event.deliveries, exc)
            await self._nak(delivery, self._delay(event.deliveries))

    def _type_of(self, delivery: Delivery[M]) -> str:
        header = delivery.headers.get(EVENT_TYPE_HEADER)
        return metrics.type_label(header or delivery.subject.removeprefix(SUBJECT_PREFIX))

    async def _dead_letter(self, delivery: Delivery[M], reason: str, detail: str) -> None:
        event_type = self._type_of(delivery)
        original = dict(delivery.headers)
        original_id = original.pop(MSG_ID_HEADER, None)
        headers = {
            **original,
            MSG_ID_HEADER: f"dlq:{self.consumer}:{delivery.sequence}",
            REASON_HEADER: header_value(reason),
            DETAIL_HEADER: header_value(detail),
            ORIGINAL_SUBJECT_HEADER: header_value(delivery.subject),
            ORIGINAL_SEQUENCE_HEADER: str(delivery.sequence),
            CONSUMER_HEADER: self.consumer,
            DELIVERIES_HEADER: str(delivery.deliveries),
        }
        if original_id:
            headers[ORIGINAL_ID_HEADER] = header_value(original_id)
        subject = f"{DEADLETTER_PREFIX}{SUBJECT_PREFIX}{event_type}"
        try:
            await self._publish_dead_letter(subject, delivery.data, headers, event_type)
        except Exception as exc:  # noqa: BLE001 - never drop: leave it for redelivery and try again later
            log.warning("dead-letter publish failed (%s); message %d kept", exc, delivery.sequence)
            await self._nak(delivery, self._delay(delivery.deliveries))
            return
        await self._term(delivery)
        self.status.dead_lettered += 1
        self.status.dead_letter_reasons[reason] = self.status.dead_letter_reasons.get(reason, 0) + 1
        metrics.EVENTS_DEAD_LETTERED.labels(self.consumer, event_type, reason).inc()
        log.warning(
            "dead-lettered message %d (%s): %s",
            delivery.sequence,
            reason,
            detail,
            extra={"reason": reason, "subject": delivery.subject},
        )

    # ---- liveness and lag ------------------------------------------------------------------------------------
    async def _keep_alive(self, deliveries: Sequence[Delivery[M]]) -> None:
        interval = max(0.5, self.settings.consumer_ack_wait_s / 3)
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(Exception):
                await self._in_progress(deliveries)

    async def _watch(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(Exception):
                await self.refresh_status()
            await asyncio.sleep(STATUS_EVERY_S)
