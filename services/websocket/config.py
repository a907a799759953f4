"""Settings of the Socket.IO gateway, read from `VENTA_*` variables when the process starts.

Rate limits and presence timings are settings so that tests can make a minute last a second; defaults are SPEC's:
15 viewport updates and 30 vendor location updates per socket per minute, AWAY after 60 s without an update or a
heartbeat, OFFLINE after 5 minutes.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.kit.auth.settings import AuthSettings, comma_list
from services.kit.config import GrpcSettings, KitSettings, Port
from services.kit.events.settings import EventSettings
from services.kit.redis_client import RedisSettings

KiB = 1024


class WebsocketSettings(KitSettings, GrpcSettings, EventSettings, AuthSettings, RedisSettings):
    model_config = SettingsConfigDict(env_prefix="VENTA_", extra="ignore", frozen=True)

    service_name: str = "websocket"
    http_port: Port = 5004
    users_addr: str = "127.0.0.1:5000"
    location_addr: str = "127.0.0.1:5001"
    breaker_redis: bool = False
    socketio_channel: str = Field(default="venta-socketio", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    """The Redis pub/sub channel replicas exchange room emits on; replicas of one platform share it."""

    # abuse limits
    user_location_limit: int = Field(default=15, ge=1, le=10_000)
    vendor_location_limit: int = Field(default=30, ge=1, le=10_000)
    rate_window_s: int = Field(default=60, ge=1, le=3600)
    max_payload_bytes: int = Field(default=16 * KiB, ge=1 * KiB, le=1024 * KiB)
    """An event payload larger than this gets an `error` event (PAYLOAD_TOO_LARGE)."""
    max_message_bytes: int = Field(default=1024 * KiB, ge=16 * KiB, le=64 * 1024 * KiB)
    """A WebSocket message larger than this closes the connection (engine.io's own protection)."""
    max_viewport_vendors: int = Field(default=500, ge=1, le=10_000)
    cors_origins: Annotated[list[str], NoDecode] = ["*"]

    # presence
    presence_away_after_s: float = Field(default=60.0, gt=0)
    presence_offline_after_s: float = Field(default=300.0, gt=0)
    presence_sweep_interval_s: float = Field(default=5.0, gt=0, le=300)
    watch_ttl_s: int = Field(default=600, ge=1)
    """How long a user's watched vendors are kept after the user's socket went away (restored on reconnect)."""

    # engine.io keep-alive
    ping_interval_s: float = Field(default=25.0, gt=0, le=300)
    ping_timeout_s: float = Field(default=20.0, gt=0, le=300)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        return comma_list(value)

    @model_validator(mode="after")
    def _presence_order(self) -> WebsocketSettings:
        if self.presence_offline_after_s <= self.presence_away_after_s:
            raise ValueError("VENTA_PRESENCE_OFFLINE_AFTER_S must be greater than VENTA_PRESENCE_AWAY_AFTER_S")
        return self
