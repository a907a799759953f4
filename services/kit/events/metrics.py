"""The `venta_events_*` and `venta_outbox_*` Prometheus families (SPEC section 10).

Labels are bounded: event types come from the catalogues buses were built with (or `unknown`), reasons from a fixed
set, consumers from code. Series whose labels are known in advance are created at 0 (publish failures per catalogue
type when a bus is built, a consumer's per-type series when it starts): a series born with its first failure hides
that failure from `rate()`/`increase()` and leaves dashboards empty until then.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from services.kit.events.catalog import Catalog
from services.kit.events.envelope import SUBJECT_PREFIX
from services.kit.metrics import LATENCY_BUCKETS

EVENTS_PUBLISHED = Counter("venta_events_published_total", "Events accepted by the stream", ["type"])
EVENTS_PUBLISH_FAILURES = Counter(
    "venta_events_publish_failures_total", "Publish attempts that failed (the event stays pending)", ["type"]
)
EVENTS_CONSUMED = Counter("venta_events_consumed_total", "Events handled and acknowledged", ["consumer", "type"])
EVENTS_FAILED = Counter(
    "venta_events_failed_total", "Handling attempts that failed (retried with backoff)", ["consumer", "type"]
)
EVENTS_DEAD_LETTERED = Counter(
    "venta_events_dead_lettered_total", "Events moved to the dead-letter stream", ["consumer", "type", "reason"]
)
EVENTS_REDELIVERED = Counter(
    "venta_events_redelivered_total", "Deliveries that were not the first for their message", ["consumer", "type"]
)
CONSUMER_LAG = Gauge(
    "venta_events_consumer_lag", "Messages in the stream not yet delivered to the consumer", ["consumer"]
)
CONSUMER_ACK_PENDING = Gauge(
    "venta_events_consumer_ack_pending", "Messages delivered to the consumer and not yet acknowledged", ["consumer"]
)
EVENT_HANDLING_LATENCY = Histogram(
    "venta_events_handling_duration_seconds", "Time to handle one fetched batch", ["consumer"], buckets=LATENCY_BUCKETS
)
OUTBOX_PENDING = Gauge("venta_outbox_pending", "Outbox rows not yet published", ["service"])
OUTBOX_RELAY_LAG = Histogram(
    "venta_outbox_relay_lag_seconds", "Commit to publish delay of outbox rows", ["service"], buckets=LATENCY_BUCKETS
)


_KNOWN_TYPES: set[str] = set()


def register_catalog(catalog: Catalog) -> None:
    """Make a catalogue's types valid labels and create their publish-failure series at 0 (idempotent)."""
    for event_type in catalog:
        if event_type not in _KNOWN_TYPES:
            _KNOWN_TYPES.add(event_type)
            EVENTS_PUBLISH_FAILURES.labels(event_type)


def type_label(event_type: str | None) -> str:
    """A metric label for a type: registered types as they are, anything else `unknown` (bounded cardinality)."""
    return event_type if event_type in _KNOWN_TYPES else "unknown"


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` is one token, a final `>` one or more."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token != "*" and token != have[i]):
            return False
    return len(want) == len(have)


def initialise_consumer(consumer: str, subject_pattern: str, catalog: Catalog) -> None:
    """Create a consumer's series at 0 for every catalogue type its subject pattern (`events.vendor.>`) receives."""
    for event_type in catalog:
        if subject_matches(subject_pattern, SUBJECT_PREFIX + event_type):
            for family in (EVENTS_CONSUMED, EVENTS_FAILED, EVENTS_REDELIVERED):
                family.labels(consumer, event_type)
    CONSUMER_LAG.labels(consumer)
    CONSUMER_ACK_PENDING.labels(consumer)
    EVENT_HANDLING_LATENCY.labels(consumer)
