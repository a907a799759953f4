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

from services.kit.events.broker import BrokerBus, count_publish
from services.kit.events.bus import BatchHandler, BusUnavailable, PublishResult
from services.kit.events.catalog import Catalog
from services.kit.events.consumer import JetStreamConsumer
from services.kit.events.consuming import DEADLETTER_PREFIX
from services.kit.events.envelope import SUBJECT_PREFIX
from services.kit.events.settings import EventSettings

log = logging.getLogger("venta.events")

WEEK_S = 7 * 86_400.0


class JetStreamBus(BrokerBus):
    system = "nats"

    def __init__(self, settings: EventSettings, catalog: Catalog, *, client_name: str) -> None:
        super().__init__(settings, catalog, client_name=client_name)
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None

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
                num_replicas=self.settings.events_stream_replicas,
            ),
            StreamConfig(
                name=self.settings.deadletter_stream,
                subjects=[f"{DEADLETTER_PREFIX}>"],
                storage=StorageType.FILE,
                retention=RetentionPolicy.LIMITS,
                max_age=4 * WEEK_S,
                duplicate_window=self.settings.events_duplicate_window_s,
                num_replicas=self.settings.events_stream_replicas,
            ),
        ]

    async def ensure_streams(self) -> None:
        """Create both streams, or bring an existing one to this configuration (idempotent, safe on every start).

        That includes its replicas: a stream created with one copy gets as many as `events_stream_replicas` (a
        JetStream cluster copies the data to the new peers itself)."""
        for config in self.stream_configs():
            try:
                await self.js.add_stream(config)
            except BadRequestError:
                await self.js.update_stream(config)

    async def publish_raw(
        self, subject: str, payload: bytes, headers: Mapping[str, str], *, event_type: str | None = None
    ) -> PublishResult:
        """Publish bytes as they are (relays replay stored envelopes; tests inject malformed ones)."""
        dead = subject.startswith(DEADLETTER_PREFIX)
        stream = self.settings.deadletter_stream if dead else self.settings.events_stream
        try:
            ack = await self.js.publish(subject, payload, headers=dict(headers), stream=stream)
        except Exception as exc:
            count_publish(exc, event_type)
            raise
        result = PublishResult(sequence=ack.seq, duplicate=bool(ack.duplicate))
        count_publish(result, event_type)
        return result

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
            for unacknowledged in late:
                # frees nats.py's pending-ack slot; the row stays pending and is published again
                unacknowledged.cancel()
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
            count_publish(outcome, event_type)
            outcomes.append(outcome)
        return outcomes

    def _consumer(self, *, consumer: str, pattern: str, handler: BatchHandler) -> JetStreamConsumer:
        return JetStreamConsumer(bus=self, consumer=consumer, pattern=pattern, handler=handler)

    async def health(self) -> None:
        if not self.connected:
            raise BusUnavailable("not connected to NATS")
        await self.js.stream_info(self.settings.events_stream)

    async def close(self) -> None:
        """Stop consumers (each finishes its batch), then drain the connection: nothing in flight is dropped."""
        await self._stop_consumers()
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            try:
                await nc.drain()
            except Exception as exc:  # noqa: BLE001 - a dead server cannot be drained; closing is all that is left
                log.warning("NATS drain failed (%s); closing", exc)
                await nc.close()
