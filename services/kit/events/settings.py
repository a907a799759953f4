"""Event-bus and outbox settings (`VENTA_*`), mixed into the settings of every service that publishes or consumes.

They include the Redis settings (`VENTA_REDIS_URL`, `VENTA_REDIS_PASSWORD`): with `VENTA_EVENTS_PROVIDER=redis` the
platform's one Redis carries the events too, reached the way every other Redis client of the platform reaches it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.kit.config import ENV_PREFIX
from services.kit.redis_client import RedisSettings

EventsProvider = Literal["jetstream", "redis"]


class EventSettings(RedisSettings):
    """Which broker carries events (NATS JetStream or Redis Streams), its streams, and how consumers and the outbox
    relay pace themselves."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    events_provider: EventsProvider = Field(
        default="jetstream",
        description="The event broker: `jetstream` (NATS, `VENTA_NATS_URL`) or `redis` (Redis Streams on "
        "`VENTA_REDIS_URL`, which then must persist its data: append-only file). The full re-index and "
        "`venta deadletters` need `jetstream`. The operator sets it from `spec.events.provider`.",
    )
    nats_url: str = Field(
        default="nats://127.0.0.1:4222", description="The NATS server (JetStream enabled); the operator sets it."
    )
    events_stream: str = Field(
        default="EVENTS",
        description="The stream holding every event (subjects `events.>`): a JetStream stream, or with Redis the key "
        "`venta:stream:<name>`.",
    )
    deadletter_stream: str = Field(
        default="DEADLETTER",
        description="The stream dead-lettered messages go to (subjects `deadletter.>`), bytes unchanged (with Redis "
        "the key `venta:stream:<name>`).",
    )
    events_stream_replicas: int = Field(
        default=1,
        ge=1,
        le=5,
        description="Copies of each JetStream stream (events and dead letters), at most the number of NATS servers: "
        "3 on a 3-server cluster keeps both streams writable and readable with one server down. A stream made with "
        "fewer is raised to this on the next start. The operator sets it from `spec.nats` (ignored with Redis).",
    )
    events_duplicate_window_s: float = Field(
        default=600.0,
        gt=0,
        le=86_400,
        description="Seconds within which the stream drops a re-published event with the same `Nats-Msg-Id`, which "
        "makes the relay's publish-then-mark safe (with Redis: how long a message id is remembered).",
    )
    events_publish_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=120,
        description="Seconds to connect to the broker (NATS or Redis) and to wait for a publish's acknowledgement.",
    )
    # consumers
    consumer_batch: int = Field(
        default=256,
        ge=1,
        le=10_000,
        description="Most messages a consumer fetches and hands its handler at once (one, then whatever else is "
        "waiting).",
    )
    consumer_fetch_timeout_s: float = Field(
        default=1.0, gt=0, le=60, description="Seconds a consumer's fetch waits for the first message."
    )
    consumer_ack_wait_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Seconds the broker waits for an acknowledgement before redelivering (a batch in hand sends "
        "`in_progress` every third of it). With Redis it is also the longest retry delay: a message's backoff is "
        "capped to it.",
    )
    consumer_max_deliver: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="Deliveries of a message whose handler keeps raising (not `RetryLater`) before it is "
        "dead-lettered (`max_deliveries`).",
    )
    consumer_retry_base_s: float = Field(
        default=0.5, gt=0, le=60, description="First delay, in seconds, of a failed message's exponential backoff."
    )
    consumer_retry_max_s: float = Field(
        default=30.0, gt=0, le=3600, description="Longest delay, in seconds, of a failed message's backoff."
    )
    # transactional outbox
    outbox_relay_enabled: bool = Field(
        default=True,
        description="`false` holds publishing from the outbox (rows stay pending; maintenance and the fault tests).",
    )
    outbox_batch_size: int = Field(
        default=500, ge=1, le=10_000, description="Most outbox rows the relay publishes in one pass."
    )
    outbox_poll_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Seconds between the relay's polls of the outbox when no commit woke it.",
    )
    outbox_retry_max_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Longest delay, in seconds, of the relay's backoff while publishing fails (the broker down).",
    )
    outbox_retention_s: float = Field(
        default=86_400.0, gt=0, description="Seconds a published outbox row is kept before it is deleted."
    )
