"""Redis clients built one way for every service: short timeouts, so a dead Redis is a fast error, never a hang.

Callers treat Redis as a cache or a shared counter, never as the record: when it does not answer they degrade (read
through to the owner, or let readiness report it), they do not wait. The synchronous client exists only for
libraries that need one (pybreaker's `CircuitRedisStorage`, slowapi's storage); async code uses `async_redis`.
"""

from __future__ import annotations

import redis
import redis.asyncio


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
