"""The event bus on NATS JetStream: streams created idempotently, de-duplicated publishes, durable pull consumers.

Stream `EVENTS` holds `events.>` on disk with a de-duplication window, so an outbox row published twice (a relay
that crashed after publishing, before marking the row sent) is stored once: the envelope's `messageId` is the
`Nats-Msg-Id`. Stream `DEADLETTER` holds `deadletter.>`: messages a consumer gave up on, with the reason in headers.
The connection reconnects forever; callers see failures as exceptions and retry (the outbox keeps what is unsent).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, PubAck, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from services.kit.events.bus import BatchHandler, PublishResult
from services.kit.events.catalog import Catalog
from services.kit.events.consumer import JetStreamConsumer
from services.kit.events.envelope import SUBJECT_PREFIX, Envelope
from services.kit.events.metrics import EVENTS_PUBLISH_FAILURES, EVENTS_PUBLISHED, register_catalog, type_label
from services.kit.events.settings import EventSettings
from services.kit.events.tracing import end_span, parent_context, start_publish

log = logging.getLogger("venta.events")

MSG_ID_HEADER = "Nats-Msg-Id"
EVENT_TYPE_HEADER = "Venta-Event-Type"
DEADLETTER_PREFIX = "deadletter."
WEEK_S = 7 * 86_400.0


class BusUnavailable(ConnectionError):
    """The bus is not connected (yet, or any more)."""


class JetStreamBus:
    def __init__(self, settings: EventSettings, catalog: Catalog, *, client_name: str) -> None:
        self.settings = settings
        self.catalog = catalog
        register_catalog(catalog)
        self.client_name = client_name
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._consumers: list[JetStreamConsumer] = []

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise BusUnavailable("not connected to NATS")
        return self._js

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def connect(self, *, configure_streams: bool = True) -> None:
        """Connect (one attempt at the initial connection; reconnects after that are automatic and endless).

        `configure_streams=False` is for tools (`venta deadletters`): they use the streams as the platform made them
        and must not bring them to their own, possibly different, settings.
        """
        if self._nc is not None:
            return
        nc = NatsClient()
        try:
            # bounded: with endless reconnects, nats.py would also retry the *initial* connection forever
            await asyncio.wait_for(
                nc.connect(
                    self.settings.nats_url,
                    name=self.client_name,
                    connect_timeout=2,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,  # type: ignore[arg-type] # seconds; a float works
                    allow_reconnect=True,
                    ping_interval=10,
                    drain_timeout=5,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                ),
                self.settings.events_publish_timeout_s,
            )
        except BaseException:
            await nc.close()
            raise
        self._nc = nc
        self._js = nc.jetstream(timeout=self.settings.events_publish_timeout_s)
        if configure_streams:
            await self.ensure_streams()

    async def _on_error(self, exc: Exception) -> None:
        log.warning("NATS error: %s", exc)

    async def _on_disconnected(self) -> None:
        log.warning("disconnected from NATS, reconnecting")

    async def _on_reconnected(self) -> None:
        log.info("reconnected to NATS")

    def stream_configs(self) -> list[StreamConfig]:
        return [
            StreamConfig(
                name=self.settings.events_stream,
                subjects=[f"{SUBJECT_PREFIX}>"],
                storage=StorageType.FILE,
                retention=RetentionPolicy.LIMITS,
                discard=DiscardPolicy.OLD,
                max_age=WEEK_S,
                duplicate_window=self.settings.events_duplicate_window_s,
            ),
            StreamConfig(
                name=self.settings.deadletter_stream,
                subjects=[f"{DEADLETTER_PREFIX}>"],
                storage=StorageType.FILE,
                retention=RetentionPolicy.LIMITS,
                max_age=4 * WEEK_S,
                duplicate_window=self.settings.events_duplicate_window_s,
            ),
        ]

    async def ensure_streams(self) -> None:
        """Create both streams, or bring an existing one to this configuration (idempotent, safe on every start)."""
        for config in self.stream_configs():
            try:
                await self.js.add_stream(config)
            except BadRequestError:
                await self.js.update_stream(config)

    async def publish(self, envelope: Envelope, *, headers: Mapping[str, str] | None = None) -> PublishResult:
        """Publish one event now, in a PRODUCER span continuing the trace in `headers` (else the current one)."""
        span, trace_headers = start_publish(envelope.subject, envelope.message_id, parent=parent_context(headers))
        all_headers = {
            **(headers or {}),
            **trace_headers,
            MSG_ID_HEADER: envelope.message_id,
            EVENT_TYPE_HEADER: envelope.type,
        }
        try:
            result = await self.publish_raw(envelope.subject, envelope.encode(), all_headers, event_type=envelope.type)
        except BaseException as exc:
            end_span(span, exc)
            raise
        end_span(span)
        return result

    async def publish_raw(
        self, subject: str, payload: bytes, headers: Mapping[str, str], *, event_type: str | None = None
    ) -> PublishResult:
        """Publish bytes as they are (relays replay stored envelopes; tests inject malformed ones)."""
        dead = subject.startswith(DEADLETTER_PREFIX)
        stream = self.settings.deadletter_stream if dead else self.settings.events_stream
        try:
            ack = await self.js.publish(subject, payload, headers=dict(headers), stream=stream)
        except Exception:
            EVENTS_PUBLISH_FAILURES.labels(type_label(event_type)).inc()
            raise
        if not ack.duplicate:
            EVENTS_PUBLISHED.labels(type_label(event_type)).inc()
        return PublishResult(sequence=ack.seq, duplicate=bool(ack.duplicate))

    async def publish_pipelined(
        self, messages: Sequence[tuple[str, bytes, Mapping[str, str], str]]
    ) -> list[PublishResult | BaseException]:
        """Publish `(subject, payload, headers, type)` in order without waiting for each ack; one outcome each.

        Messages leave in order on one connection, so they are stored in order; the acks are awaited together,
        which is what makes a relay fast, under one deadline for the batch (a lost connection costs one timeout, not
        one per message). An outcome is an exception when that message may not be stored.
        """
        js = self.js
        timeout = self.settings.events_publish_timeout_s
        futures: list[asyncio.Future[PubAck] | BaseException] = []
        for subject, payload, headers, _ in messages:
            try:
                futures.append(await js.publish_async(subject, payload, headers=dict(headers), wait_stall=timeout))
            except Exception as exc:  # noqa: BLE001 - reported per message
                futures.append(exc)
        # one deadline for the whole batch: acks lost with a dropped connection must not cost `timeout` each
        waiting = [f for f in futures if isinstance(f, asyncio.Future)]
        if waiting:
            _, late = await asyncio.wait(waiting, timeout=timeout)
            for future in late:
                future.cancel()  # frees nats.py's pending-ack slot; the row stays pending and is published again
        outcomes: list[PublishResult | BaseException] = []
        for (_, _, _, event_type), future in zip(messages, futures, strict=True):
            outcome: PublishResult | BaseException
            if isinstance(future, BaseException):
                outcome = future
            elif future.cancelled():
                outcome = TimeoutError(f"no acknowledgement within {timeout:g} s")
            elif (error := future.exception()) is not None:
                outcome = error
            else:
                ack = future.result()
                outcome = PublishResult(sequence=ack.seq, duplicate=bool(ack.duplicate))
            if isinstance(outcome, BaseException):
                EVENTS_PUBLISH_FAILURES.labels(type_label(event_type)).inc()
            elif not outcome.duplicate:
                EVENTS_PUBLISHED.labels(type_label(event_type)).inc()
            outcomes.append(outcome)
        return outcomes

    async def subscribe(self, *, consumer: str, pattern: str, handler: BatchHandler) -> JetStreamConsumer:
        subscription = JetStreamConsumer(bus=self, consumer=consumer, pattern=pattern, handler=handler)
        await subscription.start()
        self._consumers.append(subscription)
        return subscription

    async def health(self) -> None:
        if not self.connected:
            raise BusUnavailable("not connected to NATS")
        await self.js.stream_info(self.settings.events_stream)

    async def close(self) -> None:
        """Stop consumers (each finishes its batch), then drain the connection: nothing in flight is dropped."""
        for subscription in self._consumers:
            await subscription.stop()
        self._consumers.clear()
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            try:
                await nc.drain()
            except Exception as exc:  # noqa: BLE001 - a dead server cannot be drained; closing is all that is left
                log.warning("NATS drain failed (%s); closing", exc)
                await nc.close()
