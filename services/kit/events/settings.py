"""Event-bus and outbox settings (`VENTA_*`), mixed into the settings of every service that publishes or consumes."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.kit.config import ENV_PREFIX


class EventSettings(BaseSettings):
    """Where NATS JetStream is, the streams events go to, and how consumers and the outbox relay pace themselves."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    nats_url: str = Field(
        default="nats://127.0.0.1:4222", description="The NATS server (JetStream enabled); the operator sets it."
    )
    events_stream: str = Field(
        default="EVENTS", description="The JetStream stream holding every event (subjects `events.>`)."
    )
    deadletter_stream: str = Field(
        default="DEADLETTER",
        description="The stream dead-lettered messages go to (subjects `deadletter.>`), bytes unchanged.",
    )
    events_duplicate_window_s: float = Field(
        default=600.0,
        gt=0,
        le=86_400,
        description="Seconds within which the stream drops a re-published event with the same `Nats-Msg-Id`, which "
        "makes the relay's publish-then-mark safe.",
    )
    events_publish_timeout_s: float = Field(
        default=5.0, gt=0, le=120, description="Seconds to connect to NATS and to wait for a publish's acknowledgement."
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
        description="Seconds JetStream waits for an acknowledgement before redelivering (a batch in hand sends "
        "`in_progress` every third of it).",
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
        description="Longest delay, in seconds, of the relay's backoff while publishing fails (NATS down).",
    )
    outbox_retention_s: float = Field(
        default=86_400.0, gt=0, description="Seconds a published outbox row is kept before it is deleted."
    )
