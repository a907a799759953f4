"""Every committed change reaches the index, exactly once in effect, whatever crashes in between.

Each test makes N >= 1,000 vendor changes through the vendor service while something fails, and ends with the same
check (`harness.converged`): index == vendor table, no outbox row pending, dead letters = the poisoned messages the
test published on purpose. Each runs once per event provider (`broker`: NATS JetStream, Redis Streams), the services
configured by settings only. N and the outage length are configurable (VENTA_TEST_FAULT_CHANGES,
VENTA_TEST_OUTAGE_S) so a developer can run them bigger.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from services.devkit.servers import Postgres
from services.kit.db.migrations import upgrade
from services.search.provider import SearchProvider
from services.vendors import app as vendors_app
from tests.support.algolia_standin import AlgoliaStandIn
from tests.support.event_brokers import EventBroker
from tests.support.search_pipeline import ChangeDriver, converged, pending_outbox, publish_poison
from tests.support.search_providers import algolia_search, postgres_search
from tests.support.service_process import ServiceProcess

CHANGES = int(os.environ.get("VENTA_TEST_FAULT_CHANGES", "1000"))
OUTAGE_S = float(os.environ.get("VENTA_TEST_OUTAGE_S", "30"))


async def until(predicate: Any, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


@pytest.mark.slow
async def test_broker_killed_and_restarted_mid_stream(
    broker: EventBroker, postgres: Postgres, vendors_on: Any, start_search_sync: Any
) -> None:
    vendors = await vendors_on(**broker.settings())
    provider = postgres_search(postgres)
    await start_search_sync(provider, **broker.settings())
    poisoned = await publish_poison(broker)
    driver = ChangeDriver(f"127.0.0.1:{vendors.grpc_port}")
    run = asyncio.create_task(driver.run(CHANGES))
    await until(lambda: driver.done >= CHANGES // 3)
    await asyncio.to_thread(broker.server.kill)
    done_at_kill = driver.done
    await until(lambda: driver.done >= done_at_kill + 100 or run.done())  # requests keep committing meanwhile
    assert await pending_outbox(vendors.database_url) > 0
    await asyncio.to_thread(broker.server.start)  # same data directory: the stream and consumer state survive
    await run
    await converged(provider=provider, vendors_url=vendors.database_url, broker=broker, dead_letters=poisoned)
    await provider.close()


@pytest.mark.slow
async def test_search_sync_killed_mid_batch(
    broker: EventBroker, postgres: Postgres, vendors_on: Any, tmp_path: Path
) -> None:
    vendors = await vendors_on(**broker.settings())
    search_db = f"search_{uuid.uuid4().hex[:8]}"
    provider = postgres_search(postgres, search_db)
    sync = ServiceProcess(
        "search-sync",
        {
            **broker.env(),
            "VENTA_DATABASE_URL": postgres.url_for(search_db),
            "VENTA_CONSUMER_ACK_WAIT_S": "3",
            "VENTA_CONSUMER_RETRY_MAX_S": "2",
            "VENTA_CONSUMER_BATCH": "100",
        },
        tmp_path / "search-sync.log",
    )
    sync.start()
    await sync.wait_ready()
    poisoned = await publish_poison(broker)
    driver = ChangeDriver(f"127.0.0.1:{vendors.grpc_port}")
    run = asyncio.create_task(driver.run(CHANGES))
    in_flight_at_kill, redelivered = [], 0
    try:
        for round_ in range(3):
            await until(lambda r=round_: driver.done >= CHANGES * (r + 1) // 4 or run.done())
            # hold the index table so the batch in hand is stuck mid-write, then kill the process under it
            conn = await asyncpg.connect(postgres.url_for(search_db))
            lock = conn.transaction()
            await lock.start()
            await conn.execute("LOCK TABLE search_vendor IN ACCESS EXCLUSIVE MODE")
            await asyncio.sleep(0.5)
            status = await asyncio.to_thread(sync.get, "/health/events")
            in_flight_at_kill.append(status["ackPending"])
            redelivered += status["redelivered"]
            sync.kill()
            await lock.rollback()
            await conn.close()
            sync.start()
            await sync.wait_ready()
        await run
        await converged(provider=provider, vendors_url=vendors.database_url, broker=broker, dead_letters=poisoned)
        redelivered += (await asyncio.to_thread(sync.get, "/health/events"))["redelivered"]
        assert max(in_flight_at_kill) > 0, f"killed with a batch in hand: {in_flight_at_kill}"
        assert redelivered > 0, "the batch killed mid-write was delivered again"
    finally:
        sync.stop()
        await provider.close()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgres", "algolia"])
async def test_search_backend_failing(
    backend: str,
    broker: EventBroker,
    postgres: Postgres,
    fresh_postgres: Postgres,
    algolia: AlgoliaStandIn,
    vendors_on: Any,
    start_search_sync: Any,
) -> None:
    vendors = await vendors_on(**broker.settings())
    provider: SearchProvider = postgres_search(fresh_postgres) if backend == "postgres" else algolia_search(algolia)
    sync = await start_search_sync(provider, **broker.settings())
    poisoned = await publish_poison(broker)
    driver = ChangeDriver(f"127.0.0.1:{vendors.grpc_port}")
    run = asyncio.create_task(driver.run(CHANGES))
    await until(lambda: driver.done >= CHANGES // 4)
    started = time.monotonic()
    if backend == "postgres":
        await asyncio.to_thread(fresh_postgres.kill)
    else:
        algolia.failing = True
    await run  # the vendor service does not depend on search: changes keep committing
    await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - started)))
    failed_during_outage = sync.subscription.status.failed
    if backend == "postgres":
        await asyncio.to_thread(fresh_postgres.start)
    else:
        algolia.failing = False
    assert failed_during_outage > 0, "search sync kept retrying while the backend was down"
    await converged(provider=provider, vendors_url=vendors.database_url, broker=broker, dead_letters=poisoned)
    await provider.close()


@pytest.mark.slow
async def test_vendor_service_killed_between_commit_and_publish(
    broker: EventBroker, postgres: Postgres, start_search_sync: Any, tmp_path: Path
) -> None:
    vendors_url = postgres.url_for(f"vendors_{uuid.uuid4().hex[:8]}")
    await upgrade(vendors_app.MIGRATIONS, vendors_url.replace("postgresql://", "postgresql+asyncpg://"))
    vendors = ServiceProcess("vendors", {**broker.env(), "VENTA_DATABASE_URL": vendors_url}, tmp_path / "vendors.log")
    provider = postgres_search(postgres)
    await start_search_sync(provider, **broker.settings())
    poisoned = await publish_poison(broker)
    driver = ChangeDriver(f"127.0.0.1:{vendors.grpc_port}")
    try:
        # 1. every change commits, none is published (the relay is held), then the process dies
        vendors.start(VENTA_OUTBOX_RELAY_ENABLED="false")
        await vendors.wait_ready()
        await driver.run(CHANGES)
        assert await pending_outbox(vendors_url) == CHANGES
        vendors.kill()
        # 2. it comes back and publishes them; then it dies again while publishing a stream of new changes
        vendors.start()
        await vendors.wait_ready()
        run = asyncio.create_task(driver.run(300, tolerate_failures=True))
        await until(lambda: driver.done >= CHANGES + 100)
        vendors.kill()
        await asyncio.sleep(0.5)
        vendors.start()
        await run
        await converged(provider=provider, vendors_url=vendors_url, broker=broker, dead_letters=poisoned)
    finally:
        vendors.stop()
        await provider.close()
