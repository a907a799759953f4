"""The whole HTTP side on real servers: PostgreSQL, Redis, NATS, the three gRPC services, the local identity
provider and the gateway, each started as production starts it (`build(settings)`), on random ports.

One platform serves the module's tests (starting it costs seconds); tests that stop a service or need other
settings build their own with `start_gateway` / `start_grpc`. The only stand-ins are HTTP ones for SaaS that
cannot be reached from here (Cloudinary), in `standins.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from platform_hosts import CLERK_SECRET, REVENUECAT_SECRET, Hosts, Platform, new_clerk_id

from services.devkit.servers import Nats, Postgres, Redis
from services.kit.grpc.server import GrpcServiceHost

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
        settings = started.gateway_settings(
            vendors=vendors,
            users=users,
            location=location,
            identity=identity,
            upload_dir=tmp_path_factory.mktemp("uploads"),
            cache_invalidation_events=True,
        )
        gateway = await started.start_gateway(settings)
        yield Platform(vendors, users, location, identity, gateway, settings, redis_server.url, search_sync.provider)
    finally:
        await started.stop()


@pytest.fixture
async def api(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=platform.url, timeout=10) as client:
        yield client


def assert_envelope(response: httpx.Response, status: int, type_: str, code: str | None = None) -> dict[str, Any]:
    """The response is the error envelope with this status/type (and code); returns the `error` object."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"type", "code", "message", "details", "path", "requestId", "timestamp"}, error
    assert error["type"] == type_, error
    if code is not None:
        assert error["code"] == code, error
    assert error["requestId"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text and 'File "' not in response.text
    return dict(error)


async def scalar(host: GrpcServiceHost, sql: str, *args: Any) -> Any:
    """One value from the service's own database, read directly (not through the service under test)."""
    conn = await asyncpg.connect(host.database_url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()
