"""The provider-agnostic face of the event bus: what publishers and consumers may rely on, nothing about NATS.

Handlers say how to retry the way kopf's handlers do: raise `RetryLater` when the failure is the world's (a backend
is down: the event is fine, try again after a backoff, as long as it takes), `Poison` when the event itself can
never succeed (dead-letter it now). Any other exception is retried with backoff up to the consumer's maximum
deliveries, then dead-lettered with the error as the reason. Handlers receive batches, so that a consumer can write
a batch to its backend in one call; on a failure the consumer retries the batch event by event to isolate the
culprit, so handlers must be idempotent (every delivery is at least once).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from services.kit.events.catalog import Catalog
from services.kit.events.envelope import CamelModel, Envelope

# The headers every provider reads: the message id it de-duplicates on (NATS's own name for it, kept for every
# provider so that outbox rows, dead letters and replays carry one name), and the event's type.
MSG_ID_HEADER = "Nats-Msg-Id"
EVENT_TYPE_HEADER = "Venta-Event-Type"


class BusUnavailable(ConnectionError):
    """The bus is not connected (yet, or any more)."""


class RetryLater(Exception):
    """A transient failure outside the event: redeliver after a backoff (optionally at least `delay_s`)."""

    def __init__(self, message: str, *, delay_s: float | None = None) -> None:
        super().__init__(message)
        self.delay_s = delay_s


class Poison(Exception):
    """The event can never be handled: dead-letter it with `reason` (a short fixed word) and `detail`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Event:
    """One decoded, schema-validated delivery."""

    envelope: Envelope
    data: CamelModel
    subject: str
    headers: Mapping[str, str]
    stream_sequence: int
    deliveries: int


BatchHandler = Callable[[Sequence[Event]], Awaitable[None]]


@dataclass(frozen=True)
class PublishResult:
    sequence: int
    duplicate: bool


@dataclass
class ConsumerStatus:
    """What `/health/events` reports; counts are since the process started, lag is the broker's view."""

    consumer: str
    consumed: int = 0
    failed: int = 0
    dead_lettered: int = 0
    redelivered: int = 0
    lag: int | None = None
    ack_pending: int | None = None
    dead_letter_stream_total: int | None = None
    last_error: str | None = None
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)


class Subscription(Protocol):
    status: ConsumerStatus

    async def refresh_status(self) -> ConsumerStatus: ...

    async def stop(self) -> None: ...


class EventBus(Protocol):
    """What every publisher and consumer holds (`services.kit.events.factory.event_bus` builds one)."""

    catalog: Catalog

    async def connect(self) -> None: ...

    async def publish(self, envelope: Envelope, *, headers: Mapping[str, str] | None = None) -> PublishResult: ...

    async def publish_pipelined(
        self, messages: Sequence[tuple[str, bytes, Mapping[str, str], str]]
    ) -> list[PublishResult | BaseException]:
        """Publish `(subject, payload, headers, type)` in order, acks awaited together; one outcome per message."""
        ...

    async def subscribe(self, *, consumer: str, pattern: str, handler: BatchHandler) -> Subscription:
        """Start a durable consumer of `pattern` (an event type, or a prefix ending in `.>`, e.g. `vendor.>`)."""
        ...

    async def health(self) -> None:
        """Raise when the bus cannot be used (the readiness check)."""
        ...

    async def close(self) -> None: ...


def backoff_delay(attempt: int, *, base_s: float, max_s: float) -> float:
    """Exponential backoff with full jitter in its upper half: attempt 1 waits about `base_s`, doubling to `max_s`."""
    ceiling = min(max_s, base_s * 2.0 ** max(0, attempt - 1))
    return float(ceiling * (0.5 + random.random() / 2))
