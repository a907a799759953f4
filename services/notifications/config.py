"""Settings of the notifications service: its HTTP port (the API the gateway forwards to, and the probes), its
database, the event bus it consumes, the token verification it shares with the edges, and the Socket.IO channel it
pushes on."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.kit.auth.settings import AuthSettings
from services.kit.config import DatabaseSettings, GrpcSettings, KitSettings, Port, peer_address
from services.kit.events.settings import EventSettings
from services.kit.redis_client import RedisSettings, SocketIoChannelSettings


class NotificationSettings(
    KitSettings, DatabaseSettings, GrpcSettings, EventSettings, AuthSettings, RedisSettings, SocketIoChannelSettings
):
    model_config = SettingsConfigDict(env_prefix="VENTA_", extra="ignore", frozen=True)

    service_name: str = "notifications"
    http_port: Port = 5007
    db_name: str | None = "venta_notifications"
    users_addr: str = peer_address("users", 5000)
    vendors_addr: str = peer_address("vendors", 5005)
    breaker_redis: bool = Field(
        default=False,
        description="`true` shares the breakers' state between replicas in Redis (pybreaker's CircuitRedisStorage).",
    )
    consumer_name: str = Field(
        default="notifications",
        pattern=r"^[A-Za-z0-9_-]{1,48}$",
        description="Prefix of the durable consumers' names (`<prefix>-vendors`, `-presence`, `-subscriptions`); a new "
        "name is a new consumer, which reads every event the stream still holds.",
    )
    online_notice_interval_s: float = Field(
        default=600.0,
        ge=0,
        le=86_400,
        description="A vendor coming online notifies its favouriting users at most once per this many seconds (a "
        "flapping connection would otherwise notify on every reconnect).",
    )
    page_size_max: int = Field(default=100, ge=1, le=1000, description="Most notifications one page may hold.")
    start_retry_max_s: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="Longest delay, in seconds, between attempts to reach NATS at start (not ready until subscribed).",
    )
