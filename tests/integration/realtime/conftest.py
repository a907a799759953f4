"""The Socket.IO gateway on real servers: PostgreSQL, Redis, NATS, the user/vendor/location services, the local
identity provider and the gateway itself, each started as production starts it, on random ports.

Presence timings are shrunk (AWAY after 1 s, OFFLINE after 2.5 s) so presence tests take seconds; the module's
gateway has generous rate limits, and the rate-limit tests start their own with SPEC's.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import nats
import pytest

from services.devkit.servers import Nats, Postgres, Redis
from tests.support.platform_hosts import Hosts
from tests.support.realtime import FAST_PRESENCE, GENEROUS_LIMITS, BusEvents, Realtime


@pytest.fixture
async def bus(nats_server: Nats) -> AsyncIterator[BusEvents]:
    events = BusEvents()
    client = await nats.connect(nats_server.url)
    await client.subscribe("events.websocket.>", cb=events.on_message)
    await client.flush()
    yield events
    await client.close()


@pytest.fixture(scope="module")
async def realtime(postgres: Postgres, nats_server: Nats, redis_server: Redis) -> AsyncIterator[Realtime]:
    hosts = Hosts(postgres, nats_server, redis_server)
    try:
        vendors, users, location = await hosts.start_services()
        identity = await hosts.start_identity(users)
        settings = hosts.websocket_settings(
            vendors=vendors,
            users=users,
            location=location,
            identity=identity,
            socketio_channel=f"test-{uuid.uuid4().hex[:8]}",
            **FAST_PRESENCE,
            **GENEROUS_LIMITS,
        )
        websocket = await hosts.start_websocket(settings)
        yield Realtime(hosts, vendors, users, location, identity, websocket)
    finally:
        await hosts.stop()
