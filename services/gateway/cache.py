"""The read cache of `GET /v1/vendors/{id}`: the serialized answer, in Redis, for `ttl_s`.

A hit costs one Redis GET and no gRPC call. Correctness against writes: `invalidate` bumps a per-vendor generation
and deletes the entry; a reader stores what it fetched only if the generation it saw before fetching is unchanged
(checked atomically in Redis), so a read racing an update cannot put the old vendor back. Entries are invalidated
by this gateway's own writes and by `vendor.*` events (`services.gateway.invalidation`: writes made elsewhere,
e.g. through another replica or a future admin tool); the TTL bounds what
any missed invalidation can cost. Redis trouble makes the cache miss, never fail the request.

`count_and_get` is the read of the cached-read path (`services.gateway.hot_reads`): the request's rate-limit hit and
the lookup in one Redis command. What it found, or that it missed, is left in the request's state (`LOOKED_UP`) when
the request goes on to the route, so the route does not look it up again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis.asyncio
from redis.exceptions import RedisError

from services.gateway.ratelimit import Counter
from services.kit.metrics import CACHE_REQUESTS

log = logging.getLogger("venta.gateway.cache")

PREFIX = "venta:gateway:vendor:"
_PUT_IF_SAME_GENERATION = """
local current = redis.call('GET', KEYS[2])
if (current or '') == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""
# the fixed-window hit exactly as limits' incr_expire script counts it, then the entry and its generation
_COUNT_AND_GET = """
local count = redis.call('INCRBY', KEYS[1], ARGV[2])
if tonumber(count) == tonumber(ARGV[2]) then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return {count, redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3])}
"""
LOOKED_UP = "venta.vendor_cache_looked_up"
"""The request state's key for a lookup made before routing: (vendor id, the body found or None, generation seen)."""


@dataclass(frozen=True)
class Lookup:
    count: int | None  # the rate-limit hit's count in its window; None when Redis failed
    body: bytes | None
    generation: str


class VendorCache:
    name = "gateway_vendor"

    def __init__(self, client: redis.asyncio.Redis, *, ttl_s: int) -> None:
        self.client = client
        self.ttl_s = ttl_s
        # EVALSHA (the script's hash, not its text, on every call; loaded again by redis-py if Redis lost it)
        self._count_and_get = client.register_script(_COUNT_AND_GET)
        self._put_if_same_generation = client.register_script(_PUT_IF_SAME_GENERATION)

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    async def get(self, vendor_id: str) -> tuple[bytes | None, str]:
        """(cached body or None, generation to pass back to `put`)."""
        if not self.enabled:
            return None, ""
        try:
            values = await self.client.mget(PREFIX + vendor_id, PREFIX + vendor_id + ":gen")
            body, generation = (str(v) if v is not None else None for v in values)  # the client decodes: str
        except RedisError as exc:
            CACHE_REQUESTS.labels(self.name, "error").inc()
            log.warning("vendor cache read failed: %s", type(exc).__name__)
            return None, "?"
        CACHE_REQUESTS.labels(self.name, "hit" if body is not None else "miss").inc()
        return (body.encode() if body is not None else None), generation or ""

    async def count_and_get(self, vendor_id: str, hit: Counter) -> Lookup:
        """Count `hit` and look the vendor up, in one round trip (the cache must be enabled)."""
        key = PREFIX + vendor_id
        try:
            count, body, generation = await self._count_and_get(  # type: ignore[misc]
                keys=[hit.key, key, key + ":gen"], args=[hit.expiry_s, hit.cost]
            )
        except RedisError as exc:
            CACHE_REQUESTS.labels(self.name, "error").inc()
            log.warning("rate limit and vendor cache read failed (%s); request let through", type(exc).__name__)
            return Lookup(None, None, "?")
        CACHE_REQUESTS.labels(self.name, "hit" if body is not None else "miss").inc()
        return Lookup(int(count), body.encode() if body is not None else None, generation or "")

    async def put(self, vendor_id: str, body: bytes, generation: str) -> None:
        if not self.enabled or generation == "?":
            return
        key = PREFIX + vendor_id
        try:
            await self._put_if_same_generation(  # type: ignore[misc]
                keys=[key, key + ":gen"], args=[generation, body.decode(), str(self.ttl_s)]
            )
        except RedisError as exc:
            log.warning("vendor cache write failed: %s", type(exc).__name__)

    async def invalidate(self, vendor_id: str) -> bool:
        """Drop the entry (and outdate reads in flight); False when Redis did not answer."""
        key = PREFIX + vendor_id
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.incr(key + ":gen")
                pipe.expire(key + ":gen", max(self.ttl_s * 4, 3600))
                pipe.delete(key)
                await pipe.execute()
        except RedisError as exc:
            log.warning("vendor cache invalidation of %s failed (%s); it expires in %ds", vendor_id, exc, self.ttl_s)
            return False
        return True
