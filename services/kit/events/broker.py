"""What the providers' buses share: publishing an envelope in a PRODUCER span, counting publishes, owning consumers.

`JetStreamBus` and `RedisStreamsBus` differ in how bytes reach the broker (`publish_raw`, `publish_pipelined`) and
in their consumer class; everything a publisher or a consumer can observe besides that (headers, spans, metrics,
shutdown order) is written here once, so the two cannot drift apart. It never talks to a broker itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from services.kit.events.bus import EVENT_TYPE_HEADER, MSG_ID_HEADER, BatchHandler, PublishResult
from services.kit.events.catalog import Catalog
from services.kit.events.consuming import Consumer
from services.kit.events.envelope import Envelope
from services.kit.events.metrics import EVENTS_PUBLISH_FAILURES, EVENTS_PUBLISHED, register_catalog, type_label
from services.kit.events.settings import EventSettings
from services.kit.events.tracing import end_span, parent_context, start_publish


def count_publish(outcome: PublishResult | BaseException, event_type: str | None) -> None:
    """One publish's outcome in `venta_events_published_total` / `venta_events_publish_failures_total`."""
    if isinstance(outcome, BaseException):
        EVENTS_PUBLISH_FAILURES.labels(type_label(event_type)).inc()
    elif not outcome.duplicate:
        EVENTS_PUBLISHED.labels(type_label(event_type)).inc()


class BrokerBus(ABC):
    """The common half of an `EventBus`; a provider adds connect, the raw publishes, its consumer, health, close."""

    system = "nats"  # `messaging.system` of its spans

    def __init__(self, settings: EventSettings, catalog: Catalog, *, client_name: str) -> None:
        self.settings = settings
        self.catalog = catalog
        register_catalog(catalog)
        self.client_name = client_name
        self._consumers: list[Consumer[Any]] = []

    @abstractmethod
    async def publish_raw(
        self, subject: str, payload: bytes, headers: Mapping[str, str], *, event_type: str | None = None
    ) -> PublishResult:
        """Publish bytes as they are (relays replay stored envelopes; tests inject malformed ones)."""

    @abstractmethod
    def _consumer(self, *, consumer: str, pattern: str, handler: BatchHandler) -> Consumer[Any]:
        """A consumer of this provider, not started yet."""

    async def publish(self, envelope: Envelope, *, headers: Mapping[str, str] | None = None) -> PublishResult:
        """Publish one event now, in a PRODUCER span continuing the trace in `headers` (else the current one)."""
        span, trace_headers = start_publish(
            envelope.subject, envelope.message_id, parent=parent_context(headers), system=self.system
        )
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

    async def subscribe(self, *, consumer: str, pattern: str, handler: BatchHandler) -> Consumer[Any]:
        subscription = self._consumer(consumer=consumer, pattern=pattern, handler=handler)
        await subscription.start()
        self._consumers.append(subscription)
        return subscription

    async def _stop_consumers(self) -> None:
        """Stop every consumer; each finishes (settles) the batch in hand first."""
        for subscription in self._consumers:
            await subscription.stop()
        self._consumers.clear()
