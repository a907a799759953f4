"""Vendor presence and the users watching each vendor, kept in Redis so that every replica sees the same thing.

A vendor is ONLINE while its socket sends updates or heartbeats, AWAY after `away_after_s` of silence and OFFLINE
after `offline_after_s` or when its socket disconnects. Presence is not a replica's memory: a replica that restarts
(or crashes) leaves its vendors' presence in Redis, so a vendor that reconnects elsewhere in time stays ONLINE and
its watchers see no `vendor_disconnect`. Every transition that must happen once (going OFFLINE) is decided by one
atomic script, so when several replicas sweep at the same moment exactly one of them announces it.

Keys (prefix `venta:ws:<channel>:`, so platforms sharing one Redis never see each other's vendors):
`presence:<vendor>` hash {state, sid, since}, `presence:seen` sorted set vendor -> last
seen (epoch seconds), `watchers:<vendor>` sorted set `<user>|<sid>` -> last viewport update, `viewport:<user>` the
user's last viewport (JSON, with a TTL) so a reconnecting user gets its rooms back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis.asyncio

# KEYS: presence hash, seen zset. ARGV: vendor, now, sid. Returns the previous state ("" when it was OFFLINE).
_SEEN = """
local previous = redis.call('HGET', KEYS[1], 'state')
redis.call('HSET', KEYS[1], 'state', 'online', 'sid', ARGV[3])
if not previous then redis.call('HSET', KEYS[1], 'since', ARGV[2]) end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return previous or ''
"""

# KEYS: presence hash, seen zset. ARGV: vendor, sid ("" = any socket), cutoff ("" = any time).
# Removes the vendor if it is still held by `sid` / still silent since before `cutoff`; returns its sid, or "".
_GO_OFFLINE = """
local sid = redis.call('HGET', KEYS[1], 'sid')
if not sid then return '' end
if ARGV[2] ~= '' and sid ~= ARGV[2] then return '' end
if ARGV[3] ~= '' then
  local seen = redis.call('ZSCORE', KEYS[2], ARGV[1])
  if seen and tonumber(seen) > tonumber(ARGV[3]) then return '' end
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return sid
"""

# KEYS: presence hash. Marks an ONLINE vendor AWAY; returns 1 when this call made the change.
_GO_AWAY = """
if redis.call('HGET', KEYS[1], 'state') == 'online' then
  redis.call('HSET', KEYS[1], 'state', 'away')
  return 1
end
return 0
"""


class State(StrEnum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


@dataclass(frozen=True)
class Offline:
    vendor_id: str
    socket_id: str


class PresenceStore:
    def __init__(
        self,
        redis_client: redis.asyncio.Redis,
        *,
        channel: str,
        away_after_s: float,
        offline_after_s: float,
        watch_ttl_s: int,
    ) -> None:
        self.redis = redis_client
        self.prefix = f"venta:ws:{channel}:"
        self.seen_key = self.prefix + "presence:seen"
        self.away_after_s = away_after_s
        self.offline_after_s = offline_after_s
        self.watch_ttl_s = watch_ttl_s
        self._seen = redis_client.register_script(_SEEN)
        self._go_offline = redis_client.register_script(_GO_OFFLINE)
        self._go_away = redis_client.register_script(_GO_AWAY)

    def _key(self, vendor_id: str) -> str:
        return f"{self.prefix}presence:{vendor_id}"

    async def seen(self, vendor_id: str, sid: str, now: float) -> State:
        """Record a sign of life; returns the state the vendor was in before (OFFLINE: it just came online)."""
        previous = await self._seen(keys=[self._key(vendor_id), self.seen_key], args=[vendor_id, now, sid])
        text = previous.decode() if isinstance(previous, bytes) else str(previous)
        return State(text) if text else State.OFFLINE

    async def disconnected(self, vendor_id: str, sid: str) -> Offline | None:
        """The vendor's socket went away: OFFLINE, unless another socket has taken the vendor over since."""
        held_by = await self._go_offline(keys=[self._key(vendor_id), self.seen_key], args=[vendor_id, sid, ""])
        return Offline(vendor_id, _text(held_by)) if held_by else None

    async def sweep(self, now: float) -> tuple[list[str], list[Offline]]:
        """Silent vendors: those this call marked AWAY, and those it took OFFLINE (each decided exactly once)."""
        offline_cutoff = now - self.offline_after_s
        gone: list[Offline] = []
        for raw in await self.redis.zrangebyscore(self.seen_key, "-inf", offline_cutoff):
            vendor_id = _text(raw)
            held_by = await self._go_offline(
                keys=[self._key(vendor_id), self.seen_key], args=[vendor_id, "", offline_cutoff]
            )
            if held_by:
                gone.append(Offline(vendor_id, _text(held_by)))
        away: list[str] = []
        for raw in await self.redis.zrangebyscore(self.seen_key, offline_cutoff, now - self.away_after_s):
            vendor_id = _text(raw)
            if await self._go_away(keys=[self._key(vendor_id)]):
                away.append(vendor_id)
        return away, gone

    async def state(self, vendor_id: str) -> State:
        value = await self.redis.hget(self._key(vendor_id), "state")
        return State(_text(value)) if value else State.OFFLINE

    async def counts(self, now: float) -> dict[State, int]:
        online = await self.redis.zcount(self.seen_key, now - self.away_after_s, "+inf")
        total = await self.redis.zcount(self.seen_key, now - self.offline_after_s, "+inf")
        return {State.ONLINE: int(online), State.AWAY: int(total) - int(online)}

    # ---- who watches whom --------------------------------------------------------------------------------------

    def _watchers_key(self, vendor_id: str) -> str:
        return f"{self.prefix}watchers:{vendor_id}"

    async def watch(
        self, *, user_id: str, sid: str, entered: set[str], left: set[str], viewport: dict[str, Any], now: float
    ) -> None:
        member = f"{user_id}|{sid}"
        pipe = self.redis.pipeline(transaction=False)
        for vendor_id in entered:
            pipe.zadd(self._watchers_key(vendor_id), {member: now})
            pipe.expire(self._watchers_key(vendor_id), self.watch_ttl_s)
        for vendor_id in left:
            pipe.zrem(self._watchers_key(vendor_id), member)
        pipe.set(f"{self.prefix}viewport:{user_id}", json.dumps(viewport), ex=self.watch_ttl_s)
        await pipe.execute()

    async def unwatch(self, *, user_id: str, sid: str, vendor_ids: set[str]) -> None:
        """The user's socket went away: it no longer watches, but its viewport is kept for a reconnect."""
        member = f"{user_id}|{sid}"
        pipe = self.redis.pipeline(transaction=False)
        for vendor_id in vendor_ids:
            pipe.zrem(self._watchers_key(vendor_id), member)
        await pipe.execute()

    async def last_viewport(self, user_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(f"{self.prefix}viewport:{user_id}")
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    async def watchers(self, vendor_id: str, now: float) -> list[str]:
        """The users watching the vendor (each once), leaving out entries older than the watch TTL."""
        key = self._watchers_key(vendor_id)
        await self.redis.zremrangebyscore(key, "-inf", now - self.watch_ttl_s)
        members = await self.redis.zrange(key, 0, -1)
        return sorted({_text(m).partition("|")[0] for m in members})


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
