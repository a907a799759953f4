"""A durable consumer on Redis Streams: the broker's verbs of `consuming.Consumer`, with a consumer group.

The consumer's name is its group on the events stream (created at the stream's start, `XGROUP CREATE ... 0
MKSTREAM`, like JetStream's deliver-all); each process is a member of it. The verbs:

- fetch: first the entries due again (`XAUTOCLAIM` of entries idle for `consumer_ack_wait_s`, with their delivery
  counts), else new ones (`XREADGROUP >`, blocking up to the fetch timeout, or until a retry of ours is due). An
  entry whose subject this consumer's pattern does not match is acked at once; a malformed one is dead-lettered
  (`bad_entry`).
- ack / term: `XACK`. nak(delay): the entry stays pending and its idle time is set to `ack_wait - delay`, so it is
  claimed again after `delay` (at most `ack_wait`), by this process or any other member. in_progress: idle back to 0.
- A member that died leaves its entries pending; they are claimed by the others after `ack_wait`, as JetStream
  redelivers after its ack wait.

Lag comes from `XINFO GROUPS` (Redis 7 counts it; on Redis 6.2 it is counted up to `LAG_CAP`). Now and then the
consumer forgets members that left (nothing pending, idle for an hour) and entries the stream's retention trimmed.
Every Redis call runs untraced: the events' spans are the trace.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from services.kit.events import metrics
from services.kit.events.bus import BatchHandler, ConsumerStatus
from services.kit.events.consuming import Consumer, Delivery
from services.kit.events.envelope import SUBJECT_PREFIX
from services.kit.events.redis_entries import MalformedEntry, as_fields, entry_sequence, parse_entry, subject_of
from services.kit.telemetry import untraced

if TYPE_CHECKING:
    from services.kit.events.redis_streams import RedisStreamsBus

log = logging.getLogger("venta.events.consumer")

# KEYS[1] the stream; ARGV: group, member, min idle (ms), cursor, count. Answers {next cursor, {{id, fields,
# deliveries}, ...}}: XAUTOCLAIM counts the delivery, XPENDING tells how many there were.
CLAIM_LUA = """
local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local out = {}
for _, entry in ipairs(claimed[2]) do
  if entry then
    local pending = redis.call('XPENDING', KEYS[1], ARGV[1], entry[1], entry[1], 1)
    local deliveries = 1
    if pending[1] then deliveries = pending[1][4] end
    table.insert(out, {entry[1], entry[2], deliveries})
  end
end
return {claimed[1], out}
"""
# KEYS[1] the stream; ARGV: an entry id, a cap. Answers how many entries follow that id (at most the cap).
COUNT_AFTER_LUA = """
local n, from, cap = 0, '(' .. ARGV[1], tonumber(ARGV[2])
while n < cap do
  local chunk = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', 1000)
  if #chunk == 0 then break end
  n = n + #chunk
  from = '(' .. chunk[#chunk][1]
end
return n
"""
LAG_CAP = 10_000
DUE_MARGIN_S = 0.02  # a retry's due time locally, a little after Redis will let it be claimed
TIDY_EVERY = 30  # status refreshes (one every 2 s): about once a minute
DEPARTED_IDLE_MS = 3_600_000
TRIMMED_BATCH = 100


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisStreamsConsumer(Consumer[bytes]):
    system = "redis"

    def __init__(self, *, bus: RedisStreamsBus, consumer: str, pattern: str, handler: BatchHandler) -> None:
        super().__init__(
            settings=bus.settings, catalog=bus.catalog, consumer=consumer, pattern=pattern, handler=handler
        )
        self.bus = bus
        self.key = bus.events_key
        self.member = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._claim_script = bus.redis.register_script(CLAIM_LUA)
        self._count_script = bus.redis.register_script(COUNT_AFTER_LUA)
        self._cursor: bytes = b"0-0"
        self._due: float | None = None  # when the earliest retry this member asked for can be claimed
        self._refreshes = 0

    @property
    def redis(self) -> Redis:
        return self.bus.redis

    @property
    def _ack_wait_ms(self) -> int:
        return int(self.settings.consumer_ack_wait_s * 1000)

    async def start(self) -> None:
        await self._create_group()
        self._start_loops()

    async def _create_group(self) -> None:
        try:
            with untraced():
                await self.redis.xgroup_create(self.key, self.consumer, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # ---- fetch -----------------------------------------------------------------------------------------------
    async def _fetch(self) -> list[Delivery[bytes]]:
        with untraced():
            try:
                entries = await self._claim_due() or await self._read_new()
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                log.warning(
                    "consumer group %s missing from %s (Redis lost its data?); creating it", self.consumer, self.key
                )
                await self._create_group()
                return []
            return await self._deliveries(entries)

    async def _claim_due(self) -> list[tuple[bytes, dict[bytes, bytes], int]]:
        """Entries pending longer than the ack wait: nakked ones now due, or a departed member's."""
        if self._due is not None and time.monotonic() >= self._due:
            self._due = None
        args: list[bytes | str | int] = [
            self.consumer,
            self.member,
            self._ack_wait_ms,
            self._cursor,
            self.settings.consumer_batch,
        ]
        reply: Any = await self._claim_script(keys=[self.key], args=args)
        cursor, claimed = reply
        self._cursor = cursor
        return [(entry_id, as_fields(fields), int(count)) for entry_id, fields, count in claimed]

    async def _read_new(self) -> list[tuple[bytes, dict[bytes, bytes], int]]:
        wait_s = self.settings.consumer_fetch_timeout_s
        if self._due is not None:
            wait_s = min(wait_s, self._due - time.monotonic())
        reply: Any = await self.redis.xreadgroup(
            self.consumer,
            self.member,
            {self.key: ">"},
            count=self.settings.consumer_batch,
            block=max(1, int(wait_s * 1000)),  # 0 would block forever
        )
        return [(entry_id, as_fields(fields), 1) for _, entries in reply or [] for entry_id, fields in entries]

    async def _deliveries(self, entries: list[tuple[bytes, dict[bytes, bytes], int]]) -> list[Delivery[bytes]]:
        """This consumer's deliveries; other consumers' entries acked, malformed ones dead-lettered."""
        theirs: list[bytes] = []
        mine: list[Delivery[bytes]] = []
        for entry_id, fields, deliveries in entries:
            subject = subject_of(fields)
            sequence = entry_sequence(entry_id)
            if subject and subject.startswith(SUBJECT_PREFIX) and not metrics.subject_matches(self.subject, subject):
                theirs.append(entry_id)
                continue
            try:
                if subject is not None and not subject.startswith(SUBJECT_PREFIX):
                    raise MalformedEntry(f"subject {subject[:100]!r} is not under {SUBJECT_PREFIX}>")
                entry = parse_entry(fields)
            except MalformedEntry as exc:
                data = fields.get(b"data", b"")
                await self._dead_letter(
                    Delivery(entry_id, subject or "", data, {}, sequence, deliveries), "bad_entry", str(exc)
                )
                continue
            mine.append(Delivery(entry_id, entry.subject, entry.data, entry.headers, sequence, deliveries))
        if theirs:
            await self.redis.xack(self.key, self.consumer, *theirs)
        return mine

    # ---- settle ----------------------------------------------------------------------------------------------
    async def _ack(self, deliveries: Sequence[Delivery[bytes]]) -> None:
        if deliveries:
            with untraced():
                await self.redis.xack(self.key, self.consumer, *[d.message for d in deliveries])

    async def _nak(self, delivery: Delivery[bytes], delay_s: float) -> None:
        wait_s = min(delay_s, self.settings.consumer_ack_wait_s)
        idle_ms = self._ack_wait_ms - int(wait_s * 1000)
        with untraced():
            await self.redis.xclaim(
                self.key, self.consumer, self.member, 0, [delivery.message], idle=max(0, idle_ms), justid=True
            )
        due = time.monotonic() + wait_s + DUE_MARGIN_S
        self._due = due if self._due is None else min(self._due, due)

    async def _term(self, delivery: Delivery[bytes]) -> None:
        await self._ack([delivery])

    async def _in_progress(self, deliveries: Sequence[Delivery[bytes]]) -> None:
        with untraced():
            await self.redis.xclaim(
                self.key, self.consumer, self.member, 0, [d.message for d in deliveries], justid=True
            )

    async def _publish_dead_letter(self, subject: str, data: bytes, headers: dict[str, str], event_type: str) -> None:
        await self.bus.publish_raw(subject, data, headers, event_type=event_type)

    # ---- status ----------------------------------------------------------------------------------------------
    async def refresh_status(self) -> ConsumerStatus:
        with untraced():
            self._refreshes += 1
            if self._refreshes % TIDY_EVERY == 1:
                try:
                    await self._tidy()
                except Exception as exc:  # noqa: BLE001 - housekeeping: the next round tries again
                    log.info("tidying consumer group %s failed (%s)", self.consumer, exc)
            groups = await self.redis.xinfo_groups(self.key)
            group = next(g for g in groups if _text(g["name"]) == self.consumer)
            lag = group.get("lag")
            if lag is None:  # Redis < 7 does not count it
                lag = await self._count_script(keys=[self.key], args=[group["last-delivered-id"], LAG_CAP])
            self.status.lag = int(lag)
            self.status.ack_pending = int(group["pending"])
            self.status.dead_letter_stream_total = int(await self.redis.xlen(self.bus.deadletter_key))
        metrics.CONSUMER_LAG.labels(self.consumer).set(self.status.lag)
        metrics.CONSUMER_ACK_PENDING.labels(self.consumer).set(self.status.ack_pending)
        return self.status

    async def _tidy(self) -> None:
        """Forget pending entries the retention trimmed away (Redis 6.2 keeps them) and members that left."""
        first: Any = await self.redis.xrange(self.key, "-", "+", count=1)
        below = f"({_text(first[0][0])}" if first else "+"
        gone: list[Any] = await self.redis.xpending_range(self.key, self.consumer, "-", below, TRIMMED_BATCH)
        if gone:
            await self.redis.xack(self.key, self.consumer, *[p["message_id"] for p in gone])
        members: list[Any] = await self.redis.xinfo_consumers(self.key, self.consumer)
        for member in members:
            name = _text(member["name"])
            if name != self.member and int(member["pending"]) == 0 and int(member["idle"]) > DEPARTED_IDLE_MS:
                await self.redis.xgroup_delconsumer(self.key, self.consumer, name)

    async def _release(self) -> None:
        """Leave the group when nothing is pending on this member (pending entries stay for the others to claim)."""
        with untraced():
            pending = await self.redis.xpending_range(self.key, self.consumer, "-", "+", 1, consumername=self.member)
            if not pending:
                await self.redis.xgroup_delconsumer(self.key, self.consumer, self.member)
