"""`venta reindex`: rebuild the search index from the vendor service, then swap it in atomically.

Reads every vendor through the vendor service's streaming `ListVendors` (the vendor table's owner; this command
never reads its database), fills a fresh index and swaps it in (Algolia: temporary index + moveIndex; PostgreSQL:
new table + drop/rename in one transaction): searches never see an empty or half-built index. Changes committed
while the new index was being built went to the old one; they are replayed from the event stream position noted
before the snapshot, merged by version, so nothing is lost and nothing goes backwards. Runs as a command or as the
operator's scheduled Job. Needs the JetStream provider (it reads the stream by sequence): with
`VENTA_EVENTS_PROVIDER=redis` it stops at once with one line saying so.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime

from services.contracts.venta.vendor.v1 import vendor_pb2, vendor_pb2_grpc
from services.event_catalog import CATALOG
from services.kit.events.factory import require_jetstream
from services.kit.events.jetstream import JetStreamBus
from services.kit.events.replay import last_sequence, replay
from services.kit.grpc.client import PeerClient, make_breaker
from services.kit.grpc.tls import GrpcTls
from services.search.factory import build_search_provider
from services.search.provider import SearchProvider
from services.search.records import Upsert, record_from_vendor, version_of
from services.search_sync.config import SearchSyncSettings
from services.search_sync.indexer import change_for

LIST_TIMEOUT_S = 3600.0


def upsert_for(vendor: vendor_pb2.Vendor) -> Upsert:
    record = record_from_vendor(
        {
            "id": vendor.id,
            "ownerId": vendor.owner_id,
            "name": vendor.name,
            "description": vendor.description,
            "phone": vendor.phone,
            "email": vendor.email,
            "website": vendor.website,
            "open": vendor.open,
            "primaryImage": vendor.primary_image,
            "lat": vendor.lat if vendor.HasField("lat") else None,
            "long": vendor.long if vendor.HasField("long") else None,
            "createdAt": vendor.created_at,
            "updatedAt": vendor.updated_at,
        }
    )
    return Upsert(record=record, version=version_of(datetime.fromisoformat(vendor.updated_at)))


async def vendor_records(vendors: PeerClient[vendor_pb2_grpc.VendorServiceAsyncStub]) -> AsyncIterator[Upsert]:
    async for vendor in vendors.server_stream(
        vendors.stub.ListVendors, vendor_pb2.ListVendorsRequest(), timeout_s=LIST_TIMEOUT_S
    ):
        yield upsert_for(vendor)


async def reindex(
    settings: SearchSyncSettings,
    *,
    vendors_addr: str,
    provider: SearchProvider | None = None,
    tls: GrpcTls | None = None,
) -> dict[str, int | float]:
    """Rebuild and swap; returns counts (indexed, replayed events, seconds) for the caller to print or test.
    `tls`: mutual TLS to the vendor service (in a cluster with `spec.network.grpcTLS`)."""
    require_jetstream(settings, tool="venta reindex", why="it replays the event stream by sequence")
    started = time.monotonic()
    provider = provider or build_search_provider(settings, default_dsn=settings.dsn)
    bus = JetStreamBus(settings, CATALOG, client_name="venta-reindex")
    vendors = PeerClient(
        target_name="vendors",
        address=vendors_addr,
        stub=vendor_pb2_grpc.VendorServiceStub,
        timeout_s=LIST_TIMEOUT_S,
        breaker=make_breaker("reindex->vendors", fail_max=3, reset_timeout_s=30.0),
        tls=tls,
    )
    try:
        await provider.open()
        await bus.connect()
        before = await last_sequence(bus)
        indexed = await provider.rebuild(vendor_records(vendors))
        replayed = 0
        async for events in replay(bus, pattern="vendor.>", after=before):
            await provider.apply([c for e in events if (c := change_for(e)) is not None])
            replayed += len(events)
    finally:
        await vendors.close()
        await bus.close()
        await provider.close()
    return {"indexed": indexed, "replayed": replayed, "seconds": round(time.monotonic() - started, 2)}
