"""The pytest plugin: real servers per session, fresh ones per test for fault injection, and service hosts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.devkit.servers import Nats, Postgres, Redis
from services.kit.db.migrations import upgrade
from services.kit.grpc.server import GrpcServiceHost


@pytest.fixture(scope="session")
def servers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def postgres(servers_dir: Path) -> Iterator[Postgres]:
    with Postgres(servers_dir / "postgres", durable=False) as server:
        yield server  # type: ignore[misc]


@pytest.fixture(scope="session")
def nats_server(servers_dir: Path) -> Iterator[Nats]:
    with Nats(servers_dir / "nats") as server:
        yield server  # type: ignore[misc]


@pytest.fixture(scope="session")
def redis_server(servers_dir: Path) -> Iterator[Redis]:
    with Redis(servers_dir / "redis") as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def fresh_postgres(tmp_path: Path) -> Iterator[Postgres]:
    """A PostgreSQL of this test's own, for tests that kill it."""
    server = Postgres(tmp_path / "postgres", durable=False)
    server.start()
    try:
        yield server
    finally:
        server.kill() if server.proc else None


ServiceFactory = Callable[..., Awaitable[GrpcServiceHost]]


@pytest.fixture
async def start_service() -> AsyncIterator[ServiceFactory]:
    """Start a service host the way production does (migrations, then `build`), on random ports; stopped after.

    Call as `await start_service(build, SettingsClass, migrations=..., database_url=..., **settings)`; each call
    gets a database of its own unless `database_url` names one.
    """
    hosts: list[GrpcServiceHost] = []

    async def start(
        build: Callable[[Any], GrpcServiceHost],
        settings_cls: type[Any],
        *,
        migrations: Path | None = None,
        postgres: Postgres | None = None,
        database: str | None = None,
        **overrides: Any,
    ) -> GrpcServiceHost:
        if postgres is not None:
            overrides["database_url"] = postgres.url_for(database or f"test_{uuid.uuid4().hex[:12]}")
        settings = settings_cls(grpc_port=0, http_port=0, host="127.0.0.1", shutdown_grace_s=2.0, **overrides)
        if migrations is not None:
            await upgrade(migrations, settings.dsn)
        host = build(settings)
        await host.start()
        hosts.append(host)
        return host

    yield start
    for host in reversed(hosts):
        await host.stop()
