"""Rate limits per client and route, counted in Redis so that every gateway replica enforces the same budget.

slowapi's `Limiter` builds the storage (Redis, from `VENTA_REDIS_URL`) and the strategy (fixed window by default);
the check itself runs in the gateway's `rate_limit` dependency rather than slowapi's decorator or middleware for two
reasons: the Redis round trip of that synchronous storage must not block the event loop (it runs in a worker
thread here), and a refusal must leave in the API's error envelope with `Retry-After`. Limits come from settings:
`VENTA_RATE_LIMIT` for every route, `VENTA_RATE_LIMIT_ROUTES` (route template -> limit) for exceptions.
If Redis stops answering, requests are let through (and logged): the limiter protects the platform, it must not
take it down.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from slowapi import Limiter
from starlette.requests import Request

from services.kit.http.middleware import route_template

log = logging.getLogger("venta.gateway.ratelimit")

KEY_PREFIX = "venta-rl"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int | None
    reset_at: float | None

    @property
    def retry_after_s(self) -> int:
        return max(1, math.ceil((self.reset_at or time.time()) - time.time()))

    def headers(self) -> dict[str, str]:
        headers = {"X-RateLimit-Limit": str(self.limit)}
        if not self.allowed:
            headers["X-RateLimit-Remaining"] = str(max(0, self.remaining or 0))
            headers["Retry-After"] = str(self.retry_after_s)
        return headers


def client_key(request: Request) -> str:
    """The client's address (uvicorn rewrites it from X-Forwarded-For only for trusted proxies)."""
    return request.client.host if request.client else "unknown"


class RateLimiter:
    def __init__(
        self, *, storage_uri: str, default: str, routes: dict[str, str], strategy: str, timeout_s: float = 0.5
    ) -> None:
        self.slowapi = Limiter(
            key_func=client_key,
            default_limits=[default],
            storage_uri=storage_uri,
            storage_options={"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s},  # type: ignore[dict-item]
            strategy=strategy,
            key_prefix=KEY_PREFIX,
            headers_enabled=True,
        )
        self.default: RateLimitItem = parse(default)
        self.routes: dict[str, RateLimitItem] = {route: parse(value) for route, value in routes.items()}

    def item_for(self, route: str) -> RateLimitItem:
        return self.routes.get(route, self.default)

    def _hit(self, item: RateLimitItem, key: str, route: str) -> Decision:
        """One Redis round trip when allowed; the window's reset time is read only to refuse (Retry-After)."""
        strategy = self.slowapi.limiter
        if strategy.hit(item, KEY_PREFIX, key, route):
            return Decision(allowed=True, limit=item.amount, remaining=None, reset_at=None)
        reset_at, remaining = strategy.get_window_stats(item, KEY_PREFIX, key, route)
        return Decision(allowed=False, limit=item.amount, remaining=remaining, reset_at=reset_at)

    async def check(self, request: Request) -> Decision | None:
        """The decision for this request, or None when the storage failed (the request is then let through)."""
        route = route_template(request.scope)
        item = self.item_for(route)
        try:
            return await asyncio.to_thread(self._hit, item, client_key(request), route)
        except Exception as exc:  # noqa: BLE001 - storage failures of any kind: fail open, visibly
            log.warning("rate limit storage failed (%s); request let through", type(exc).__name__)
            return None
