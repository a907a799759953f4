"""The whole HTTP side on real servers: PostgreSQL, Redis, NATS, the three gRPC services, the local identity
provider and the gateway, each started as production starts it (`build(settings)`), on random ports.

One platform serves the module's tests (starting it costs seconds); tests that stop a service or need other
settings build their own with `start_gateway` / `start_grpc`. The only stand-ins are HTTP ones for SaaS that
cannot be reached from here (Cloudinary), in `standins.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from services.devkit.servers import Nats, Postgres, Redis
from tests.support.platform_hosts import CLERK_SECRET, REVENUECAT_SECRET, Hosts, Platform, new_clerk_id

__all__ = ["CLERK_SECRET", "REVENUECAT_SECRET", "Hosts", "Platform", "new_clerk_id"]


@pytest.fixture
async def hosts(postgres: Postgres, nats_server: Nats, redis_server: Redis) -> AsyncIterator[Hosts]:
    started = Hosts(postgres, nats_server, redis_server)
    yield started
    await started.stop()


@pytest.fixture(scope="module")
async def platform(
    postgres: Postgres, nats_server: Nats, redis_server: Redis, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Platform]:
    started = Hosts(postgres, nats_server, redis_server)
    try:
        vendors, users, location = await started.start_services()
        identity = await started.start_identity(users)
        search_sync = await started.start_search_sync()
        notifications = await started.start_notifications(
            vendors=vendors, users=users, identity=identity, socketio_channel=f"gateway-{uuid.uuid4().hex[:8]}"
        )
        settings = started.gateway_settings(
            vendors=vendors,
            users=users,
            location=location,
            identity=identity,
            upload_dir=tmp_path_factory.mktemp("uploads"),
            cache_invalidation_events=True,
            notifications_url=notifications.url,
        )
        gateway = await started.start_gateway(settings)
        yield Platform(vendors, users, location, identity, gateway, settings, redis_server.url, search_sync.provider)
    finally:
        await started.stop()


@pytest.fixture
async def api(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=platform.url, timeout=10) as client:
        yield client
