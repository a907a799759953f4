"""Search sync end to end on real servers: a change becomes searchable, duplicates change the index once, poison is
dead-lettered with its reason while the consumer keeps going, `/health/events` reports, and a full re-index."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from typing import Any

import grpc
import httpx
import nats as nats_py

from services.contracts.venta.vendor.v1 import vendor_pb2 as pb
from services.contracts.venta.vendor.v1 import vendor_pb2_grpc
from services.devkit.servers import Nats, Postgres, free_port
from services.event_catalog import VendorData
from services.kit.events.envelope import new_envelope
from services.search.provider import SearchQuery
from services.search_sync.config import SearchSyncSettings
from tests.support.event_brokers import broker_on
from tests.support.search_pipeline import ROOT, converged, poison_messages
from tests.support.search_providers import postgres_search


async def wait_for(predicate: Any, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = await predicate()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


async def test_a_created_vendor_is_searchable_a_moment_later(
    nats: Nats, postgres: Postgres, vendors_on: Any, start_search_sync: Any
) -> None:
    vendors = await vendors_on(nats.url)
    provider = postgres_search(postgres)
    sync = await start_search_sync(provider, nats.url)
    owner = str(uuid.uuid4())
    async with grpc.aio.insecure_channel(f"127.0.0.1:{vendors.grpc_port}") as channel:
        stub = vendor_pb2_grpc.VendorServiceStub(channel)
        started = time.monotonic()
        vid = (await stub.CreateVendor(pb.VendorCreateData(name="Tlayudas Oaxaca", user_id=owner))).id

        async def found(text: str) -> list[str]:
            return [h["objectID"] for h in (await provider.search(SearchQuery(text=text))).hits]

        assert await wait_for(lambda: found("tlayudas")) == [vid]
        assert time.monotonic() - started < 2.0
        await stub.UpdateVendor(pb.VendorUpdateData(id=vid, user_id=owner, name="Memelas Oaxaca"))
        assert await wait_for(lambda: found("memelas")) == [vid]
        await stub.SetVendorOpen(pb.VendorOpenData(id=vid, user_id=owner, open=True))

        async def open_hits() -> int:
            return (await provider.search(SearchQuery(open=True))).total

        assert await wait_for(open_hits) == 1
        await stub.DeleteVendor(pb.VendorDeleteData(id=vid, user_id=owner))

        async def gone() -> bool:
            return not await found("memelas")

        assert await wait_for(gone)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sync.http_port}") as http:
        events = (await http.get("/health/events")).json()
        assert (events["consumed"], events["failed"], events["deadLettered"], events["consumerLag"]) == (4, 0, 0, 0)
        assert (await http.get("/health/ready")).json()["checks"] == {"nats": "ok", "search": "ok", "consumer": "ok"}
        metrics = (await http.get("/metrics")).text
    for family in ("published", "consumed", "failed", "dead_lettered", "redelivered"):
        assert f"venta_events_{family}_total" in metrics
    assert 'venta_events_consumer_lag{consumer="search-sync"} 0.0' in metrics


async def test_the_same_event_twice_changes_the_index_once(
    nats: Nats, postgres: Postgres, start_search_sync: Any
) -> None:
    provider = postgres_search(postgres)
    sync = await start_search_sync(provider, nats.url)
    data = VendorData(
        id=str(uuid.uuid4()),
        owner_id=str(uuid.uuid4()),
        name="Esquites Don Pepe",
        created_at="2025-01-01T00:00:00Z",
        updated_at="2025-01-01T00:00:01Z",
    )
    envelope = new_envelope("vendor.created", data, version=1)
    first = await sync.bus.publish(envelope)
    again = await sync.bus.publish(envelope)
    assert (first.duplicate, again.duplicate, again.sequence) == (False, True, first.sequence), "Nats-Msg-Id dedupe"
    # past the de-duplication window the stream would take it again: the index still changes once
    await sync.bus.publish(envelope.model_copy(update={"message_id": str(uuid.uuid4())}))

    async def consumed() -> bool:
        return sync.subscription.status.consumed >= 2

    assert await wait_for(consumed)
    assert sync.indexer.writes == 1
    assert [h["name"] for h in (await provider.search(SearchQuery(text="esquites"))).hits] == ["Esquites Don Pepe"]


async def test_malformed_messages_are_dead_lettered_and_the_consumer_keeps_going(
    nats: Nats, postgres: Postgres, start_search_sync: Any
) -> None:
    provider = postgres_search(postgres)
    sync = await start_search_sync(provider, nats.url)
    nc = await nats_py.connect(nats.url)
    js = nc.jetstream()
    for subject, payload, headers in poison_messages():
        await js.publish(subject, payload, headers=headers)
    no_name = new_envelope(
        "vendor.created",
        VendorData(
            id=str(uuid.uuid4()),
            owner_id="o",
            name="x",
            created_at="2025-01-01T00:00:00Z",
            updated_at="2025-01-01T00:00:00Z",
        ),
        version=1,
    ).model_dump(mode="json", by_alias=True)
    del no_name["data"]["name"]
    await js.publish("events.vendor.created", json.dumps(no_name).encode())
    misrouted = new_envelope(
        "vendor.updated",
        VendorData(
            id=str(uuid.uuid4()),
            owner_id="o",
            name="Misrouted",
            created_at="2025-01-01T00:00:00Z",
            updated_at="2025-01-01T00:00:00Z",
        ),
        version=1,
    )
    await js.publish("events.vendor.created", misrouted.encode())
    good = VendorData(
        id=str(uuid.uuid4()),
        owner_id=str(uuid.uuid4()),
        name="Pambazos Good",
        created_at="2025-01-01T00:00:00Z",
        updated_at="2025-01-01T00:00:00Z",
    )
    await sync.bus.publish(new_envelope("vendor.created", good, version=1))

    async def indexed() -> int:
        return (await provider.search(SearchQuery(text="pambazos"))).total

    assert await wait_for(indexed) == 1, "the consumer went on past the poison"
    assert await wait_for(broker_on(nats).dead_letter_count) == 5
    dead = await js.pull_subscribe("deadletter.>", stream="DEADLETTER")
    reasons = {}
    for msg in await dead.fetch(5, timeout=5):
        reasons[msg.headers["Venta-Dead-Letter-Reason"]] = msg.headers["Venta-Original-Subject"]
        assert msg.headers["Venta-Dead-Letter-Detail"]
    await nc.close()
    assert reasons == {
        "bad_json": "events.vendor.updated",
        "unknown_type": "events.vendor.exploded",
        "unsupported_version": "events.vendor.created",
        "bad_data": "events.vendor.created",
        "subject_mismatch": "events.vendor.created",
    }
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sync.http_port}") as http:
        events = (await http.get("/health/events")).json()
    assert (events["deadLettered"], events["deadLetterStreamTotal"], events["consumed"]) == (5, 5, 1)


async def test_full_reindex_rebuilds_from_the_vendor_service_and_replays_concurrent_changes(
    nats: Nats, postgres: Postgres, vendors_on: Any
) -> None:
    from services.cli.reindex import reindex

    vendors = await vendors_on(nats.url)
    search_db = f"search_{uuid.uuid4().hex[:8]}"
    provider = postgres_search(postgres, search_db)
    address = f"127.0.0.1:{vendors.grpc_port}"
    async with grpc.aio.insecure_channel(address) as channel:
        stub = vendor_pb2_grpc.VendorServiceStub(channel)
        owner = str(uuid.uuid4())
        ids = [
            (await stub.CreateVendor(pb.VendorCreateData(name=f"Gorditas {i}", user_id=owner))).id for i in range(60)
        ]
        # the index holds garbage before: a full re-index replaces it
        await provider.open()
        from .test_search_contract import vendor

        await provider.apply([vendor("Stale leftover")])

        class ChangingDuringBuild:
            """The provider, with a vendor renamed after the snapshot has read it (only the replay can fix it)."""

            def __getattr__(self, name: str) -> Any:
                return getattr(provider, name)

            async def rebuild(self, records: Any) -> int:
                async def first_then_change() -> Any:
                    count = 0
                    async for record in records:
                        yield record
                        count += 1
                        if count == 1:
                            await stub.UpdateVendor(
                                pb.VendorUpdateData(id=record.object_id, user_id=owner, name="Renamed during rebuild")
                            )
                            await asyncio.sleep(0.5)  # the relay publishes it

                return await provider.rebuild(first_then_change())

        settings = SearchSyncSettings(nats_url=nats.url, database_url=postgres.url_for(search_db))
        result = await reindex(settings, vendors_addr=address, provider=ChangingDuringBuild())  # type: ignore[arg-type]
    assert (result["indexed"], result["replayed"]) == (60, 1)
    provider = postgres_search(postgres, search_db)
    await converged(provider=provider, vendors_url=vendors.database_url, broker=broker_on(nats), dead_letters=0)
    assert (await provider.search(SearchQuery(text="renamed during"))).total == 1
    assert len(ids) == 60

    done = await asyncio.to_thread(  # the vendor service answering it runs on this test's event loop
        subprocess.run,
        [sys.executable, "-m", "services.cli", "reindex", "--vendors-addr", address],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=40,
        env={"PATH": "/usr/bin:/bin", "VENTA_NATS_URL": nats.url, "VENTA_DATABASE_URL": postgres.url_for(search_db)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reindexed 60 vendors into postgres/vendor" in done.stdout
    # the replay is JetStream's: on a platform whose events are on Redis it refuses in one line, touching nothing
    refused = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.cli", "reindex", "--vendors-addr", address],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=40,
        env={
            "PATH": "/usr/bin:/bin",
            "VENTA_EVENTS_PROVIDER": "redis",
            "VENTA_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
            "VENTA_DATABASE_URL": postgres.url_for(search_db),
        },
    )
    assert refused.returncode == 2 and not refused.stdout, refused
    assert refused.stderr.strip() == (
        "venta: venta reindex needs the events on NATS JetStream (it replays the event stream by sequence), but "
        "VENTA_EVENTS_PROVIDER is 'redis'"
    )
    await provider.close()
