"""The event bus on Redis Streams, with JetStream's guarantees: one ordered stream, de-duplicated publishes, durable
consumer groups, dead letters.

Why it exists: Redis is already part of the platform, so a small installation can run without NATS
(`VENTA_EVENTS_PROVIDER=redis`). What publishers and consumers see is the same `EventBus`:

- One stream, `venta:stream:EVENTS`, holds every `events.*` entry (fields `subject`, `data`, `headers` as JSON), so
  the order of a vendor's events is the order they were published in; each consumer group reads all of it and acks
  at once what its pattern does not match. `venta:stream:DEADLETTER` holds dead letters the same way.
- A publish is one Lua script: if the message id (`Nats-Msg-Id`) was stored within the duplicate window it answers
  the first entry's id and `duplicate`, else it adds the entry (trimming entries older than the retention, `MINID ~`)
  and remembers the id for the window (`SET ... PX`). Atomic, so a relay that re-publishes after a crash stores
  each event once, as JetStream's `Nats-Msg-Id` does.
- Sequences are entry ids `<ms>-<n>` as one number, `ms * 1,000,000 + n`, increasing like JetStream's.

Redis must persist what it acknowledges (an append-only file, `appendfsync always` or `everysec`), or a restart
loses events the outbox already marked sent. Every Redis call of the bus runs untraced: the events' own spans
(`tracing`) are the trace, not one span per poll. The full re-index and `venta deadletters` stay JetStream's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from services.kit.events.broker import BrokerBus, count_publish
from services.kit.events.bus import MSG_ID_HEADER, BatchHandler, BusUnavailable, PublishResult
from services.kit.events.catalog import Catalog
from services.kit.events.consuming import DEADLETTER_PREFIX
from services.kit.events.redis_consumer import RedisStreamsConsumer
from services.kit.events.redis_entries import entry_fields, entry_sequence, message_id_key, stream_key
from services.kit.events.settings import EventSettings
from services.kit.telemetry import untraced

log = logging.getLogger("venta.events")

WEEK_MS = 7 * 86_400_000
EVENTS_RETENTION_MS = WEEK_MS  # as the JetStream stream's max age
DEADLETTER_RETENTION_MS = 4 * WEEK_MS

# KEYS[1] the stream, KEYS[2] (optional) the message id's key; ARGV[1] the window (ms), ARGV[2] the retention (ms),
# ARGV[3..] the entry's fields and values. Answers {entry id, 1 if it was a duplicate}.
PUBLISH_LUA = """
if #KEYS == 2 then
  local first = redis.call('GET', KEYS[2])
  if first then return {first, 1} end
end
local now = redis.call('TIME')
local oldest = string.format('%.0f', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[2]))
local id = redis.call('XADD', KEYS[1], 'MINID', '~', oldest, '*', unpack(ARGV, 3))
if #KEYS == 2 then redis.call('SET', KEYS[2], id, 'PX', ARGV[1]) end
return {id, 0}
"""


class RedisStreamsBus(BrokerBus):
    system = "redis"

    def __init__(self, settings: EventSettings, catalog: Catalog, *, client_name: str) -> None:
        super().__init__(settings, catalog, client_name=client_name)
        self.events_key = stream_key(settings.events_stream)
        self.deadletter_key = stream_key(settings.deadletter_stream)
        self._redis: Redis | None = None
        self._publish_script: Any = None

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            raise BusUnavailable("not connected to Redis")
        return self._redis

    async def connect(self) -> None:
        """Connect (one attempt; afterwards each command reconnects by itself when the connection was lost)."""
        if self._redis is not None:
            return
        timeout = self.settings.events_publish_timeout_s
        client = Redis.from_url(
            self.settings.redis_dsn,
            decode_responses=False,  # payloads are bytes, and a malformed one must reach a dead letter unchanged
            socket_timeout=timeout + self.settings.consumer_fetch_timeout_s,  # above a consumer's blocking read
            socket_connect_timeout=timeout,
            health_check_interval=10,
            client_name="-".join(self.client_name.split()),  # CLIENT SETNAME takes no spaces
            retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), 2),  # a stale connection, not an outage
        )
        try:
            with untraced():
                await asyncio.wait_for(client.ping(), timeout)
        except BaseException:
            await client.aclose()
            raise
        self._redis = client
        self._publish_script = client.register_script(PUBLISH_LUA)

    def _queue_publish(self, client: Redis, subject: str, payload: bytes, headers: Mapping[str, str]) -> Any:
        """The publish script's call on `client` (a connection, or a pipeline that queues it)."""
        dead = subject.startswith(DEADLETTER_PREFIX)
        stream = self.settings.deadletter_stream if dead else self.settings.events_stream
        keys = [stream_key(stream)]
        if message_id := headers.get(MSG_ID_HEADER):
            keys.append(message_id_key(stream, message_id))
        window_ms = int(self.settings.events_duplicate_window_s * 1000)
        retention_ms = DEADLETTER_RETENTION_MS if dead else EVENTS_RETENTION_MS
        args = [window_ms, retention_ms, *entry_fields(subject, payload, headers)]
        return self._publish_script(keys=keys, args=args, client=client)

    async def publish_raw(
        self, subject: str, payload: bytes, headers: Mapping[str, str], *, event_type: str | None = None
    ) -> PublishResult:
        """Publish bytes as they are (relays replay stored envelopes; tests inject malformed ones)."""
        try:
            with untraced():
                reply = await asyncio.wait_for(
                    self._queue_publish(self.redis, subject, payload, headers), self.settings.events_publish_timeout_s
                )
            result = _result(reply)
        except Exception as exc:
            count_publish(exc, event_type)
            raise
        count_publish(result, event_type)
        return result

    async def publish_pipelined(
        self, messages: Sequence[tuple[str, bytes, Mapping[str, str], str]]
    ) -> list[PublishResult | BaseException]:
        """Publish `(subject, payload, headers, type)` in order in one pipeline; one outcome each.

        One connection runs the scripts in order, so entries are stored in order; the replies are awaited together
        under one deadline for the batch. An outcome is an exception when that message may not be stored (a lost
        reply: publishing it again is de-duplicated).
        """
        timeout = self.settings.events_publish_timeout_s
        pipe = self.redis.pipeline(transaction=False)
        replies: list[Any]
        try:
            with untraced():
                for subject, payload, headers, _ in messages:
                    await self._queue_publish(pipe, subject, payload, headers)
                replies = await asyncio.wait_for(pipe.execute(raise_on_error=False), timeout)
        except TimeoutError:
            replies = [TimeoutError(f"no acknowledgement within {timeout:g} s")] * len(messages)
        except Exception as exc:  # noqa: BLE001 - the connection failed: reported per message
            replies = [exc] * len(messages)
        outcomes: list[PublishResult | BaseException] = []
        for (_, _, _, event_type), reply in zip(messages, replies, strict=True):
            outcome = reply if isinstance(reply, BaseException) else _result(reply)
            count_publish(outcome, event_type)
            outcomes.append(outcome)
        return outcomes

    def _consumer(self, *, consumer: str, pattern: str, handler: BatchHandler) -> RedisStreamsConsumer:
        return RedisStreamsConsumer(bus=self, consumer=consumer, pattern=pattern, handler=handler)

    async def health(self) -> None:
        with untraced():
            await asyncio.wait_for(self.redis.ping(), self.settings.events_publish_timeout_s)

    async def close(self) -> None:
        """Stop consumers (each finishes its batch), then close the connections."""
        await self._stop_consumers()
        client, self._redis = self._redis, None
        if client is not None:
            try:
                await client.aclose()
            except Exception as exc:  # noqa: BLE001 - a dead server cannot be said goodbye to
                log.warning("closing the Redis connection failed (%s)", exc)


def _result(reply: Any) -> PublishResult:
    entry_id, duplicate = reply
    return PublishResult(sequence=entry_sequence(entry_id), duplicate=bool(int(duplicate)))
