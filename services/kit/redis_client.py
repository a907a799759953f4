"""Redis clients built one way for every service: short timeouts, so a dead Redis is a fast error, never a hang.

Callers treat Redis as a cache or a shared counter, never as the record: when it does not answer they degrade (read
through to the owner, or let readiness report it), they do not wait. The synchronous client exists only for
libraries that need one (pybreaker's `CircuitRedisStorage`, slowapi's storage); async code uses `async_redis`.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit

import redis
import redis.asyncio
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def async_redis(url: str, *, timeout_s: float = 0.5, max_connections: int = 64) -> redis.asyncio.Redis:
    """An asyncio client answering `str` values; every command gives up after `timeout_s`."""
    return redis.asyncio.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=30,
        max_connections=max_connections,
    )


def sync_redis(url: str, *, timeout_s: float = 0.5) -> redis.Redis:
    """A blocking client (bytes values) for libraries that require one; keep its calls short or off the loop."""
    return redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)


class RedisSettings(BaseSettings):
    """Where Redis is: a URL, plus the password the operator passes from a Secret (`VENTA_REDIS_PASSWORD`).

    Secrets never travel in the URL (the URL lives in a ConfigMap); `dsn` joins them for the clients and libraries
    that only take a URL (python-socketio's Redis manager, the `limits` storage).
    """

    model_config = SettingsConfigDict(env_prefix="VENTA_", extra="ignore", frozen=True)

    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="The Redis server (`redis://host:port/db`), without the password; the operator sets it.",
    )
    redis_password: SecretStr | None = Field(
        default=None,
        description="Redis's password, joined to the URL when connecting; in a cluster the operator passes it from a "
        "Secret.",
    )
    redis_timeout_s: float = Field(
        default=0.5,
        gt=0,
        le=30,
        description="Seconds any Redis command (or connect) may take before it fails, so a dead Redis is a fast error.",
    )

    @property
    def redis_dsn(self) -> str:
        if self.redis_password is None or not self.redis_password.get_secret_value():
            return self.redis_url
        parts = urlsplit(self.redis_url)
        if parts.password:
            return self.redis_url  # the URL already carries one (a local run); it wins
        user = quote(parts.username, safe="") if parts.username else ""
        secret = quote(self.redis_password.get_secret_value(), safe="")
        host = parts.hostname or "127.0.0.1"
        netloc = f"{user}:{secret}@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class SocketIoChannelSettings(BaseSettings):
    """The Redis pub/sub channel the Socket.IO gateway's replicas share: whoever emits to a room (a replica, or the
    notifications service with a write-only manager) must use the same one."""

    model_config = SettingsConfigDict(env_prefix="VENTA_", extra="ignore", frozen=True)

    socketio_channel: str = Field(
        default="venta-socketio",
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        description="The Redis pub/sub channel replicas exchange room emits on (and the presence keys' prefix); the "
        "replicas of one platform and its notifications service share it.",
    )
