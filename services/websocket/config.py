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
from services.kit.config import GrpcSettings, KitSettings, Port, peer_address
from services.kit.events.settings import EventSettings
from services.kit.redis_client import RedisSettings, SocketIoChannelSettings

KiB = 1024


class WebsocketSettings(KitSettings, GrpcSettings, EventSettings, AuthSettings, RedisSettings, SocketIoChannelSettings):
    model_config = SettingsConfigDict(env_prefix="VENTA_", extra="ignore", frozen=True)

    service_name: str = "websocket"
    http_port: Port = 5004
    users_addr: str = peer_address("users", 5000)
    location_addr: str = peer_address("location", 5001)
    vendors_addr: str = peer_address("vendors", 5005)
    breaker_redis: bool = Field(
        default=False,
        description="`true` shares the breakers' state between replicas in Redis (pybreaker's CircuitRedisStorage), "
        "at the cost of a synchronous Redis read per call.",
    )

    # abuse limits
    user_location_limit: int = Field(
        default=15,
        ge=1,
        le=10_000,
        description="`updateUserLocation` events one socket may send per `VENTA_RATE_WINDOW_S`.",
    )
    vendor_location_limit: int = Field(
        default=30,
        ge=1,
        le=10_000,
        description="`updateVendorLocation` events one socket may send per `VENTA_RATE_WINDOW_S`.",
    )
    vendor_open_limit: int = Field(
        default=10,
        ge=1,
        le=10_000,
        description="`setVendorOpen` events one socket may send per `VENTA_RATE_WINDOW_S`.",
    )
    rate_window_s: int = Field(
        default=60, ge=1, le=3600, description="The window, in seconds, of the per-socket rate limits."
    )
    max_payload_bytes: int = Field(
        default=16 * KiB,
        ge=1 * KiB,
        le=1024 * KiB,
        description="An event payload larger than this, in bytes, gets an `error` event (`PAYLOAD_TOO_LARGE`).",
    )
    max_message_bytes: int = Field(
        default=1024 * KiB,
        ge=16 * KiB,
        le=64 * 1024 * KiB,
        description="A WebSocket message larger than this, in bytes, closes the connection (engine.io's own "
        "protection).",
    )
    max_viewport_vendors: int = Field(
        default=500, ge=1, le=10_000, description="At most this many vendors in one `vendor_channels` answer."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default=["*"],
        description="Browser origins allowed to connect (comma-separated; `*` is any); the mobile app is no browser.",
    )

    # live positions into vendor records (and the search index)
    vendor_record_interval_s: float = Field(
        default=5.0,
        ge=0.1,
        le=3600,
        description="At most one write of a moving vendor's position into its record per this many seconds (the "
        "last position of a burst is always written); what search finds lags the live map by at most this.",
    )
    vendor_record_min_distance_m: float = Field(
        default=10.0,
        ge=0,
        le=100_000,
        description="A move shorter than this, in metres, from the last recorded position is not written.",
    )

    # presence
    presence_away_after_s: float = Field(
        default=60.0,
        gt=0,
        description="Seconds without a location update or heartbeat after which a vendor is AWAY.",
    )
    presence_offline_after_s: float = Field(
        default=300.0,
        gt=0,
        description="Seconds without a location update or heartbeat after which a vendor is OFFLINE (its watchers "
        "get `vendor_disconnect`); more than the AWAY delay.",
    )
    presence_sweep_interval_s: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="Seconds between each replica's sweeps for vendors gone AWAY or OFFLINE.",
    )
    watch_ttl_s: int = Field(
        default=600,
        ge=1,
        description="Seconds a user's viewport and watched vendors are kept after the user's socket went away "
        "(restored on reconnect).",
    )

    # engine.io keep-alive
    ping_interval_s: float = Field(
        default=25.0, gt=0, le=300, description="Seconds between engine.io's keep-alive pings."
    )
    ping_timeout_s: float = Field(
        default=20.0,
        gt=0,
        le=300,
        description="Seconds engine.io waits for a ping's answer before it drops the connection.",
    )
    per_message_deflate: bool = Field(
        default=False,
        description="Compress WebSocket messages (permessage-deflate) for clients that offer it. Off, as in the "
        "Socket.IO server since engine.io 4: the live map's messages are small, and a compressor per socket costs "
        "the gateway memory (~120 MiB per 1,000 sockets) and each fan-out's latency.",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        return comma_list(value)

    @model_validator(mode="after")
    def _presence_order(self) -> WebsocketSettings:
        if self.presence_offline_after_s <= self.presence_away_after_s:
            raise ValueError("VENTA_PRESENCE_OFFLINE_AFTER_S must be greater than VENTA_PRESENCE_AWAY_AFTER_S")
        return self
