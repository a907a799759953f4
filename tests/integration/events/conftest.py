"""Fixtures of the event and search tests: a NATS server per test (so streams and durable consumers never leak
between tests), or a broker of each provider (`broker`: NATS JetStream, then Redis Streams on a Redis that fsyncs
what it acknowledges), search providers on real engines (PostgreSQL) or on the Algolia stand-in, and the pipeline
harness.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.devkit.pytest_plugin import ServiceFactory
from services.devkit.servers import EmbeddedServer, Nats, Postgres, Redis
from services.kit.grpc.server import GrpcServiceHost
from services.search.provider import SearchProvider
from services.search_sync.app import SearchSyncHost
from services.search_sync.config import SearchSyncSettings
from services.vendors import app as vendors_app
from services.vendors.config import VendorSettings
from tests.support.algolia_standin import AlgoliaStandIn
from tests.support.event_brokers import EventBroker, broker_on
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


@pytest.fixture(params=["jetstream", "redis"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventBroker]:
    """An event broker of this test's own, once per provider; its data survives kill()/start()."""
    server: EmbeddedServer = (
        Nats(tmp_path / "nats") if request.param == "jetstream" else Redis(tmp_path / "redis", durable=True)
    )
    server.start()
    try:
        yield broker_on(server)
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
    """Start search sync in-process on a given provider: `await start_search_sync(provider, nats_url, **settings)`
    (or, for any broker, `await start_search_sync(provider, **broker.settings())`)."""
    hosts: list[SearchSyncHost] = []

    async def start(provider: SearchProvider, nats_url: str | None = None, **overrides: Any) -> SearchSyncHost:
        if nats_url is not None:
            overrides["nats_url"] = nats_url
        settings = SearchSyncSettings(
            host="127.0.0.1",
            http_port=0,
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
    """Start the vendor service in-process publishing to a given NATS: `await vendors_on(nats_url, **settings)` (or,
    for any broker, `await vendors_on(**broker.settings())`)."""

    async def start(nats_url: str | None = None, **overrides: Any) -> GrpcServiceHost:
        if nats_url is not None:
            overrides["nats_url"] = nats_url
        return await start_service(
            vendors_app.build,
            VendorSettings,
            migrations=vendors_app.MIGRATIONS,
            postgres=postgres,
            outbox_poll_s=0.2,
            **overrides,
        )

    return start
