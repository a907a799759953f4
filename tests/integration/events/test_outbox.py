"""The transactional outbox in the vendor and user services: one transaction for the change and its event, a relay
that publishes what is pending (also after NATS comes back), `Nats-Msg-Id` = messageId, trace context carried."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime
from itertools import pairwise
from typing import Any

import asyncpg
import grpc
import nats as nats_py
import pytest

from services.contracts.venta.user.v1 import user_pb2, user_pb2_grpc
from services.contracts.venta.vendor.v1 import vendor_pb2 as pb
from services.contracts.venta.vendor.v1 import vendor_pb2_grpc
from services.devkit.pytest_plugin import ServiceFactory
from services.devkit.servers import Nats, Postgres, free_port
from services.event_catalog import CATALOG
from services.kit.db.session import Database
from services.kit.events.outbox import Outbox
from services.kit.telemetry import configure_tracing
from services.search.provider import SearchQuery
from services.users import app as users_app
from services.users.config import UserSettings
from services.vendors import repository
from services.vendors.config import VendorSettings
from services.vendors.models import VendorCreate
from tests.support.databases import scalar
from tests.support.event_brokers import broker_on
from tests.support.search_pipeline import converged, pending_outbox
from tests.support.search_providers import postgres_search


async def stream_messages(nats_url: str, count: int, timeout_s: float = 10.0) -> list[Any]:
    nc = await nats_py.connect(nats_url)
    js = nc.jetstream()
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                if (await js.stream_info("EVENTS")).state.messages >= count:
                    break
            except nats_py.js.errors.NotFoundError:
                pass  # the relay creates the stream when it first connects
            assert time.monotonic() < deadline, "events not published in time"
            await asyncio.sleep(0.05)
        return [await js.get_msg("EVENTS", seq) for seq in range(1, count + 1)]
    finally:
        await nc.close()


async def test_a_rolled_back_change_leaves_no_event(postgres: Postgres, vendors_on: Any, nats: Nats) -> None:
    host = await vendors_on(nats.url)
    db = Database(VendorSettings(database_url=host.database_url), application_name="test")
    with pytest.raises(RuntimeError):
        async with db.session() as session:
            await repository.create_vendor(
                session, owner_id=uuid.uuid4(), data=VendorCreate(name="Never"), outbox=Outbox(CATALOG)
            )
            raise RuntimeError("the request fails after the write")
    await db.close()
    assert await pending_outbox(host.database_url) == 0


async def test_a_hot_path_change_wakes_the_relay_once_committed_and_a_rolled_back_one_leaves_nothing(
    vendors_on: Any, nats: Nats
) -> None:
    host = await vendors_on(nats.url)
    db = Database(VendorSettings(database_url=host.database_url), application_name="test")
    wakes: list[int] = []
    outbox = Outbox(CATALOG, on_commit=lambda: wakes.append(1))
    owner = uuid.uuid4()
    async with db.session() as session:
        vendor = await repository.create_vendor(session, owner_id=owner, data=VendorCreate(name="Hot"), outbox=outbox)
    wakes.clear()  # the ORM path's own wake-up
    rows = "SELECT count(*) FROM event_outbox WHERE type = 'vendor.location.updated'"
    with pytest.raises(RuntimeError):
        async with outbox.transaction(db) as connection:
            await repository.set_location(
                connection, vendor_id=vendor.id, caller_id=owner, lat=1, long=2, outbox=outbox
            )
            raise RuntimeError("the request fails after the write")
    assert (await scalar(host, rows), wakes) == (0, [])
    async with outbox.transaction(db) as connection:
        await repository.set_location(connection, vendor_id=vendor.id, caller_id=owner, lat=1, long=2, outbox=outbox)
    assert (await scalar(host, rows), wakes) == (1, [1])
    await db.close()


async def test_concurrent_changes_of_one_vendor_get_strictly_increasing_versions(vendors_on: Any, nats: Nats) -> None:
    """Thirty changes of one vendor at once, each its own transaction waiting on the row's lock (UpdateVendor and
    SetVendorOpen are one UPDATE ... RETURNING each): every event carries a later `updatedAt` than the one committed
    before it, and the row holds the last."""
    host = await vendors_on(nats.url)
    owner = str(uuid.uuid4())
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.grpc_port}") as channel:
        stub = vendor_pb2_grpc.VendorServiceStub(channel)
        vid = (await stub.CreateVendor(pb.VendorCreateData(name="v0", user_id=owner))).id
        await asyncio.gather(
            *(stub.UpdateVendor(pb.VendorUpdateData(id=vid, user_id=owner, name=f"v{i}")) for i in range(1, 21)),
            *(stub.SetVendorOpen(pb.VendorOpenData(id=vid, user_id=owner, open=i % 2 == 0)) for i in range(10)),
        )
        stored = (await stub.GetVendorById(pb.VendorLookupByIdData(id=vid))).vendor
    connection = await asyncpg.connect(host.database_url)
    try:  # the outbox's ids are taken after the row's lock: their order is the order the changes committed in
        payloads = await connection.fetch("SELECT payload FROM event_outbox WHERE type = 'vendor.updated' ORDER BY id")
    finally:
        await connection.close()
    versions = [json.loads(row["payload"])["data"]["updatedAt"] for row in payloads]
    assert len(versions) == 30
    stamps = [datetime.fromisoformat(v) for v in versions]
    assert all(earlier < later for earlier, later in pairwise(stamps)), versions
    assert datetime.fromisoformat(stored.updated_at) == stamps[-1]


async def test_relay_publishes_with_message_id_and_trace_context(vendors_on: Any, nats: Nats) -> None:
    configure_tracing("test")
    host = await vendors_on(nats.url)
    trace_id = uuid.uuid4().hex
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.grpc_port}") as channel:
        stub = vendor_pb2_grpc.VendorServiceStub(channel)
        vid = (
            await stub.CreateVendor(
                pb.VendorCreateData(name="Traced Tacos", user_id=str(uuid.uuid4())),
                metadata=(("traceparent", f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"),),
            )
        ).id
    (msg,) = await stream_messages(nats.url, 1)
    envelope = json.loads(msg.data)
    assert (msg.subject, envelope["type"], envelope["data"]["id"]) == ("events.vendor.created", "vendor.created", vid)
    assert msg.headers["Nats-Msg-Id"] == envelope["messageId"]
    assert trace_id in msg.headers["traceparent"], "the request's trace continues through the outbox"
    assert await pending_outbox(host.database_url) == 0


async def test_events_wait_in_the_outbox_while_nats_is_down(vendors_on: Any, tmp_path: Any) -> None:
    later = Nats(tmp_path / "later-nats", port=free_port())
    host = await vendors_on(later.url, outbox_retry_max_s=0.5)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.grpc_port}") as channel:
        stub = vendor_pb2_grpc.VendorServiceStub(channel)
        for i in range(5):
            await stub.CreateVendor(pb.VendorCreateData(name=f"Offline {i}", user_id=str(uuid.uuid4())))
    assert await pending_outbox(host.database_url) == 5
    await asyncio.to_thread(later.start)
    try:
        messages = await stream_messages(later.url, 5, timeout_s=20)
        assert [json.loads(m.data)["data"]["name"] for m in messages] == [f"Offline {i}" for i in range(5)]
        assert await pending_outbox(host.database_url) == 0
    finally:
        later.kill()


async def test_user_service_publishes_user_and_integration_events(
    start_service: ServiceFactory, postgres: Postgres, nats: Nats
) -> None:
    host = await start_service(
        users_app.build,
        UserSettings,
        migrations=users_app.MIGRATIONS,
        postgres=postgres,
        nats_url=nats.url,
        vendors_addr="127.0.0.1:1",
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.grpc_port}") as channel:
        stub = user_pb2_grpc.UserServiceStub(channel)
        await stub.HandleClerkUserCreated(user_pb2.ClerkUserData(id="user_abc"))
        await stub.HandleClerkUserCreated(user_pb2.ClerkUserData(id="user_abc"))  # redelivered webhook
        purchase = user_pb2.RevenueCatSubscriptionData(
            clerk_user_id="user_abc",
            provider_id="pro_monthly",
            data=user_pb2.RevenueCatProviderData(transaction_id="t1", event_id="e1", product_id="pro_monthly"),
        )
        await stub.HandleSubscriptionCreated(purchase)
        await stub.HandleSubscriptionCreated(purchase)
        await stub.HandleClerkUserDeleted(user_pb2.ClerkUserData(id="user_abc"))
    messages = await stream_messages(nats.url, 7)
    kinds = [(m.subject.removeprefix("events."), json.loads(m.data)["data"]) for m in messages]
    assert [k for k, _ in kinds] == [
        "user.created",
        "user.integration.created",
        "user.integration.created",
        "user.subscription.updated",
        "user.integration.deleted",
        "user.integration.deleted",
        "user.deleted",
    ]
    assert kinds[0][1]["clerkId"] == "user_abc" and kinds[1][1]["type"] == "Clerk"
    assert (kinds[2][1]["type"], kinds[2][1]["providerId"]) == ("RevenueCat", "pro_monthly")
    assert (kinds[3][1]["status"], kinds[3][1]["productId"]) == ("Active", "pro_monthly")
    assert {d["userId"] for _, d in kinds} == {kinds[0][1]["userId"]}


async def test_vendor_location_reaches_the_index_as_numbers(
    postgres: Postgres, nats: Nats, vendors_on: Any, start_search_sync: Any
) -> None:
    host = await vendors_on(nats.url)
    provider = postgres_search(postgres)
    await start_search_sync(provider, nats.url)
    db = Database(VendorSettings(database_url=host.database_url), application_name="test")
    owner = uuid.uuid4()
    async with db.session() as session:
        vendor = await repository.create_vendor(
            session, owner_id=owner, data=VendorCreate(name="Moving"), outbox=Outbox(CATALOG)
        )
    async with Outbox(CATALOG).transaction(db) as connection:
        await repository.set_location(
            connection, vendor_id=vendor.id, caller_id=owner, lat=19.43, long=-99.13, outbox=Outbox(CATALOG)
        )
    await db.close()
    index = await converged(provider=provider, vendors_url=host.database_url, broker=broker_on(nats), dead_letters=0)
    assert index[str(vendor.id)]["_geoloc"] == {"lat": 19.43, "lng": -99.13}
    hits = (await provider.search(SearchQuery(lat=19.43, lng=-99.13, radius_m=100))).hits
    assert [h["objectID"] for h in hits] == [str(vendor.id)]
    await provider.close()
