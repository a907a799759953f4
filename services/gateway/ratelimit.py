"""Rate limits per client and route, counted in Redis so that every gateway replica enforces the same budget.

The `limits` library counts: its asyncio storage for Redis (on redis-py's asyncio client, a connection pool of its
own) and its strategy (`VENTA_RATE_LIMIT_STRATEGY`, fixed window by default), checked in the gateway's `rate_limit`
dependency so that a refusal leaves in the API's error envelope with `Retry-After`. Limits come from settings:
`VENTA_RATE_LIMIT` for every route, `VENTA_RATE_LIMIT_ROUTES` (route template -> limit) for exceptions. The keys are
those slowapi's limiter wrote before (same library, same prefix), so replicas of both kinds share one budget during
a rollout. If Redis stops answering, requests are let through (and logged): the limiter protects the platform, it
must not take it down.

A hit may be counted before routing, by the cached-read path (`services.gateway.hot_reads`), in the same Redis
command as the cache read: it counts with `Counter` (the fixed window's increment, the very key and expiry `limits`
uses) and leaves the count in the request's state, where `check` finds it and decides without counting again.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import redis.asyncio
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import STRATEGIES, FixedWindowRateLimiter
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.kit.http.middleware import route_template

log = logging.getLogger("venta.gateway.ratelimit")

KEY_PREFIX = "venta-rl"
COUNTED = "venta.rate_limit_count"
"""The request state's key for a hit counted before routing: (route template, its count in the window or None when
the storage failed)."""
ANSWER_HEADERS = "venta.rate_limit_headers"
"""The request state's key for the headers an allowed hit puts on the answer (`RateLimitHeaders`)."""


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


class RateLimitHeaders:
    """Puts an allowed hit's `X-RateLimit-Limit` on whatever the route answers.

    FastAPI copies the headers a dependency sets onto the answers it builds from a route's return value only: a route
    that returns its own `Response` (a forwarded answer, a file) and the error envelopes the exception handlers make
    would go without. This wraps the routes (the innermost middleware) and adds what the `rate_limit` dependency left
    in the request's state to every answer that does not carry it already.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_limit(message: Message) -> None:
            if message["type"] == "http.response.start":
                added = scope.get("state", {}).get(ANSWER_HEADERS)
                if added:
                    headers = MutableHeaders(scope=message)
                    for name, value in added.items():
                        headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_limit)


def client_key(scope: Scope) -> str:
    """The client's address (uvicorn rewrites it from X-Forwarded-For only for trusted proxies)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


@dataclass(frozen=True)
class Counter:
    """One fixed-window hit as `limits` counts it: INCRBY `key` by `cost`, and EXPIRE it after `expiry_s` when the
    increment created it (limits' incr_expire script); the hit is allowed while the count is at most `limit`."""

    key: str
    expiry_s: int
    limit: int
    cost: int = 1


class RateLimiter:
    def __init__(
        self, *, storage_uri: str, default: str, routes: dict[str, str], strategy: str, timeout_s: float = 0.5
    ) -> None:
        self._pool = redis.asyncio.ConnectionPool.from_url(
            storage_uri, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        # `connection_pool` is documented, though the signature types every option as a scalar
        self.storage = RedisStorage(storage_uri, implementation="redispy", connection_pool=self._pool)  # type: ignore[arg-type]
        self.strategy = STRATEGIES[strategy](self.storage)  # type: ignore[abstract]  # the concrete classes
        self.default: RateLimitItem = parse(default)
        self.routes: dict[str, RateLimitItem] = {route: parse(value) for route, value in routes.items()}

    def item_for(self, route: str) -> RateLimitItem:
        return self.routes.get(route, self.default)

    def counter(self, route: str, client: str) -> Counter | None:
        """The Redis key and window a hit on `route` by `client` counts in, when the strategy is the fixed window
        (the only one that is a plain counter); None for the others, which count only through `check`."""
        if not isinstance(self.strategy, FixedWindowRateLimiter):
            return None
        item = self.item_for(route)
        key = self.storage.bridge.prefixed_key(item.key_for(KEY_PREFIX, client, route))
        return Counter(key=key, expiry_s=item.get_expiry(), limit=item.amount)

    async def check(self, request: Request) -> Decision | None:
        """The decision for this request, or None when the storage failed (the request is then let through).

        One Redis round trip when allowed; the window's reset time is read only to refuse (Retry-After).
        """
        route = route_template(request.scope)
        item, key = self.item_for(route), client_key(request.scope)
        counted_route, count = request.scope.get("state", {}).get(COUNTED, (None, None))
        try:
            if counted_route == route:  # counted before routing
                if count is None:  # the storage failed then (and said so)
                    return None
                if count <= item.amount:
                    return Decision(allowed=True, limit=item.amount, remaining=None, reset_at=None)
            elif await self.strategy.hit(item, KEY_PREFIX, key, route):
                return Decision(allowed=True, limit=item.amount, remaining=None, reset_at=None)
            reset_at, remaining = await self.strategy.get_window_stats(item, KEY_PREFIX, key, route)
        except Exception as exc:  # noqa: BLE001 - storage failures of any kind: fail open, visibly
            log.warning("rate limit storage failed (%s); request let through", type(exc).__name__)
            return None
        return Decision(allowed=False, limit=item.amount, remaining=remaining, reset_at=reset_at)

    async def close(self) -> None:
        await self._pool.aclose()
