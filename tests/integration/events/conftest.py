"""Fixtures of the event and search tests: a NATS server per test (so streams and durable consumers never leak
between tests), search providers on real engines (PostgreSQL) or on the Algolia stand-in, and the pipeline harness.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.devkit.pytest_plugin import ServiceFactory
from services.devkit.servers import Nats, Postgres
from services.kit.grpc.server import GrpcServiceHost
from services.search.provider import SearchProvider
from services.search_sync.app import SearchSyncHost
from services.search_sync.config import SearchSyncSettings
from services.vendors import app as vendors_app
from services.vendors.config import VendorSettings
from tests.support.algolia_standin import AlgoliaStandIn
from tests.support.search_providers import algolia_search, postgres_search


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[Nats]:
    """A NATS (JetStream) of this test's own; its store survives kill()/start()."""
    server = Nats(tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
async def algolia() -> AsyncIterator[AlgoliaStandIn]:
    standin = AlgoliaStandIn()
    await standin.start()
    yield standin
    await standin.stop()


@pytest.fixture(params=["postgres", "algolia"])
async def provider(
    request: pytest.FixtureRequest, postgres: Postgres, algolia: AlgoliaStandIn
) -> AsyncIterator[SearchProvider]:
    chosen: SearchProvider = postgres_search(postgres) if request.param == "postgres" else algolia_search(algolia)
    await chosen.open()
    yield chosen
    await chosen.close()


@pytest.fixture
async def start_search_sync() -> AsyncIterator[Any]:
    """Start search sync in-process on a given provider: `await start_search_sync(provider, nats_url, **settings)`."""
    hosts: list[SearchSyncHost] = []

    async def start(provider: SearchProvider, nats_url: str, **overrides: Any) -> SearchSyncHost:
        settings = SearchSyncSettings(
            host="127.0.0.1",
            http_port=0,
            nats_url=nats_url,
            database_url="postgresql://unused@127.0.0.1/unused",
            consumer_retry_base_s=0.1,
            consumer_retry_max_s=2.0,
            consumer_ack_wait_s=5.0,
            **overrides,
        )
        host = SearchSyncHost(settings, provider=provider)
        await host.start()
        await host.wait_consuming()
        hosts.append(host)
        return host

    yield start
    for host in hosts:
        await host.stop()


@pytest.fixture
async def vendors_on(start_service: ServiceFactory, postgres: Postgres) -> Any:
    """Start the vendor service in-process publishing to a given NATS: `await vendors_on(nats_url, **settings)`."""

    async def start(nats_url: str, **overrides: Any) -> GrpcServiceHost:
        return await start_service(
            vendors_app.build,
            VendorSettings,
            migrations=vendors_app.MIGRATIONS,
            postgres=postgres,
            nats_url=nats_url,
            outbox_poll_s=0.2,
            **overrides,
        )

    return start
