"""The two event providers as tests see them: the server to kill, the settings that point a process at it, and what
a test reads behind the bus's back (the stored events and dead letters, straight from NATS or Redis).

The bus contract tests and the fault tests take an `EventBroker` (the `broker` fixture runs them once per provider),
so each guarantee is checked on JetStream and on Redis Streams with the same assertions.
"""

from __future__ import annotations

import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import nats
import redis.asyncio
from nats.js.errors import NotFoundError

from services.devkit.servers import EmbeddedServer, Nats, Redis
from services.event_catalog import CATALOG, UserData, VendorData
from services.kit.events.broker import BrokerBus
from services.kit.events.envelope import Envelope, new_envelope
from services.kit.events.factory import event_bus
from services.kit.events.redis_entries import as_fields, stream_key
from services.kit.events.settings import EventSettings

FAST_RETRIES = {"consumer_retry_base_s": 0.05, "consumer_retry_max_s": 0.2}


def user_event(n: int) -> Envelope:
    return new_envelope(
        "user.created",
        UserData(clerk_id=f"user_{n}", user_id=str(uuid.uuid4()), timestamp="2025-01-01T00:00:00Z"),
        version=1,
    )


def vendor_event(n: int) -> Envelope:
    return new_envelope(
        "vendor.updated",
        VendorData(
            id=str(uuid.uuid4()),
            owner_id=str(uuid.uuid4()),
            name=f"Tacos {n}",
            created_at="2025-01-01T00:00:00Z",
            updated_at="2025-01-01T00:00:00Z",
        ),
        version=1,
    )


def pipelined(envelopes: Sequence[Envelope]) -> list[tuple[str, bytes, dict[str, str], str]]:
    """What the outbox relay hands `publish_pipelined`."""
    return [
        (e.subject, e.encode(), {"Nats-Msg-Id": e.message_id, "Venta-Event-Type": e.type}, e.type) for e in envelopes
    ]


class EventBroker(ABC):
    provider: str

    def __init__(self, server: EmbeddedServer) -> None:
        self.server = server

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """The `EventSettings` fields that point a process at this broker."""

    def env(self) -> dict[str, str]:
        """The same as `VENTA_*` variables, for a process started by the test."""
        return {f"VENTA_{name.upper()}": str(value) for name, value in self.settings().items()}

    async def bus(self, **settings: Any) -> BrokerBus:
        """A connected bus of this provider whose consumers retry fast (dead letters within a second)."""
        bus = event_bus(EventSettings(**{**self.settings(), **FAST_RETRIES, **settings}), CATALOG, client_name="test")
        assert isinstance(bus, BrokerBus)
        await bus.connect()
        return bus

    async def publish_raw(self, subject: str, payload: bytes, headers: Mapping[str, str]) -> None:
        """Store a message as it is (poison, garbage) through this provider's own publish path."""
        bus = await self.bus()
        try:
            await bus.publish_raw(subject, payload, headers)
        finally:
            await bus.close()

    @abstractmethod
    async def _stream(self, name: str) -> list[tuple[str, bytes, dict[str, str]]]:
        """Every message of stream `name` (EVENTS or DEADLETTER): (subject, payload, headers), in stream order."""

    async def events(self) -> list[tuple[str, bytes, dict[str, str]]]:
        return await self._stream("EVENTS")

    async def dead_letters(self) -> list[tuple[str, bytes, dict[str, str]]]:
        return await self._stream("DEADLETTER")

    async def dead_letter_count(self) -> int:
        return len(await self.dead_letters())


class JetStreamBroker(EventBroker):
    provider = "jetstream"
    server: Nats

    def settings(self) -> dict[str, Any]:
        return {"events_provider": "jetstream", "nats_url": self.server.url}

    async def _stream(self, name: str) -> list[tuple[str, bytes, dict[str, str]]]:
        nc = await nats.connect(self.server.url)
        js = nc.jetstream()
        out = []
        try:
            try:
                state = (await js.stream_info(name)).state
            except NotFoundError:
                return []
            for sequence in range(state.first_seq, state.last_seq + 1):
                try:
                    msg = await js.get_msg(name, sequence)
                except NotFoundError:
                    continue
                out.append((msg.subject or "", msg.data or b"", dict(msg.headers or {})))
        finally:
            await nc.close()
        return out

    async def dead_letter_count(self) -> int:
        nc = await nats.connect(self.server.url)
        try:
            return int((await nc.jetstream().stream_info("DEADLETTER")).state.messages)
        except NotFoundError:
            return 0
        finally:
            await nc.close()


class RedisBroker(EventBroker):
    provider = "redis"
    server: Redis

    def settings(self) -> dict[str, Any]:
        return {"events_provider": "redis", "redis_url": self.server.url}

    def client(self) -> redis.asyncio.Redis:
        return redis.asyncio.Redis.from_url(self.server.url, decode_responses=False)

    async def xadd(self, fields: Mapping[bytes, bytes], stream: str = "EVENTS") -> None:
        """Add an entry by hand, bypassing the bus (garbage a consumer must survive)."""
        client = self.client()
        try:
            await client.xadd(stream_key(stream), dict(fields))
        finally:
            await client.aclose()

    async def _stream(self, name: str) -> list[tuple[str, bytes, dict[str, str]]]:
        client = self.client()
        try:
            entries: Any = await client.xrange(stream_key(name))
        finally:
            await client.aclose()
        out = []
        for _, raw in entries:
            fields = as_fields(raw)
            out.append(
                (
                    fields.get(b"subject", b"").decode(errors="replace"),
                    fields.get(b"data", b""),
                    json.loads(fields.get(b"headers", b"{}")),
                )
            )
        return out

    async def dead_letter_count(self) -> int:
        client = self.client()
        try:
            return int(await client.xlen(stream_key("DEADLETTER")))
        finally:
            await client.aclose()


def broker_on(server: EmbeddedServer) -> EventBroker:
    if isinstance(server, Nats):
        return JetStreamBroker(server)
    assert isinstance(server, Redis)
    return RedisBroker(server)
