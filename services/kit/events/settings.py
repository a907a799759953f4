"""Event-bus and outbox settings (`VENTA_*`), mixed into the settings of every service that publishes or consumes."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.kit.config import ENV_PREFIX


class EventSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    nats_url: str = "nats://127.0.0.1:4222"
    events_stream: str = "EVENTS"
    deadletter_stream: str = "DEADLETTER"
    events_duplicate_window_s: float = Field(default=600.0, gt=0, le=86_400)
    events_publish_timeout_s: float = Field(default=5.0, gt=0, le=120)
    # consumers
    consumer_batch: int = Field(default=256, ge=1, le=10_000)
    consumer_fetch_timeout_s: float = Field(default=1.0, gt=0, le=60)
    consumer_ack_wait_s: float = Field(default=30.0, gt=0, le=3600)
    consumer_max_deliver: int = Field(default=10, ge=1, le=1000)
    consumer_retry_base_s: float = Field(default=0.5, gt=0, le=60)
    consumer_retry_max_s: float = Field(default=30.0, gt=0, le=3600)
    # transactional outbox
    outbox_relay_enabled: bool = True
    outbox_batch_size: int = Field(default=500, ge=1, le=10_000)
    outbox_poll_s: float = Field(default=1.0, gt=0, le=60)
    outbox_retry_max_s: float = Field(default=10.0, gt=0, le=600)
    outbox_retention_s: float = Field(default=86_400.0, gt=0)
