"""Per-socket rate limits on the two update events (SPEC: 15 viewport and 30 vendor location updates per minute).

A socket lives on one replica, so its counters live in that replica's memory (the `limits` library's moving
window), cleared when the socket goes. Going over the limit costs the client an `error` event, not its connection:
a map that updates too eagerly should slow down, not lose its live feed.
"""

from __future__ import annotations

import time

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from services.kit.metrics import RATE_LIMIT_REJECTIONS
from services.websocket.errors import ErrorCode, SocketError


class SocketRateLimits:
    def __init__(self, *, service: str, limits: dict[str, int], window_s: int) -> None:
        self.service = service
        self.items = {event: RateLimitItemPerSecond(amount, window_s) for event, amount in limits.items()}
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    async def check(self, event: str, sid: str) -> None:
        """Count one `event` from socket `sid`; SocketError(RATE_LIMITED) when the socket is over its limit."""
        item = self.items.get(event)
        if item is None or await self.limiter.hit(item, sid):
            return
        RATE_LIMIT_REJECTIONS.labels(self.service, event).inc()
        stats = await self.limiter.get_window_stats(item, sid)
        retry_in = max(1, round(stats.reset_time - time.time()))
        raise SocketError(
            ErrorCode.RATE_LIMITED,
            f"{event} is limited to {item.amount} per {item.get_expiry()} s; retry in {retry_in} s",
        )

    async def forget(self, sid: str) -> None:
        for item in self.items.values():
            await self.limiter.clear(item, sid)
