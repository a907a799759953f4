"""Vendor events -> index changes, and the batch handler search sync gives the consumer.

Each event becomes a versioned change (`services.search.records`); the provider merges them, so applying the
same event twice, or an older one after a newer one, writes nothing. A backend that cannot be reached becomes
`RetryLater` (the consumer backs off and redelivers, for as long as the outage lasts).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from prometheus_client import Counter, Histogram

from services.event_catalog import VendorData, VendorLocationData
from services.kit.events.bus import Event, Poison, RetryLater
from services.kit.metrics import LATENCY_BUCKETS, trace_exemplar
from services.search.provider import SearchProvider, SearchUnavailable
from services.search.records import Change, MoveTo, Remove, Upsert, record_from_vendor, version_of

INDEX_WRITES = Counter("venta_search_index_writes_total", "Index documents written by search sync", ["provider"])
SYNC_LATENCY = Histogram(
    "venta_search_sync_latency_seconds",
    "From an event's timestamp (its commit) to its change being in the index",
    ["provider"],
    buckets=LATENCY_BUCKETS,
)


def change_for(event: Event) -> Change | None:
    """The index change an event asks for; None for a vendor event the index does not care about."""
    kind, data = event.envelope.type, event.data
    if kind in ("vendor.created", "vendor.updated") and isinstance(data, VendorData):
        record = record_from_vendor(data.model_dump(mode="json", by_alias=True))
        return Upsert(record=record, version=version_of(data.updated_at))
    if kind == "vendor.deleted" and isinstance(data, VendorData):
        return Remove(object_id=data.id, version=version_of(data.updated_at))
    if kind == "vendor.location.updated" and isinstance(data, VendorLocationData):
        return MoveTo(data.vendor_id, data.location.lat, data.location.long, version_of(data.timestamp))
    if kind.startswith("vendor."):
        return None
    raise Poison("unexpected_type", f"search sync does not handle {kind}")


class Indexer:
    def __init__(self, provider: SearchProvider) -> None:
        self.provider = provider
        self.writes = 0

    async def __call__(self, events: Sequence[Event]) -> None:
        changes = [change for event in events if (change := change_for(event)) is not None]
        try:
            written = await self.provider.apply(changes)
        except SearchUnavailable as exc:
            raise RetryLater(str(exc)) from exc
        self.writes += written
        INDEX_WRITES.labels(self.provider.name).inc(written)
        now = time.time()
        latency = SYNC_LATENCY.labels(self.provider.name)
        exemplar = trace_exemplar()  # the consumer's span: the message's trace, or the batch's
        for event in events:
            latency.observe(max(0.0, now - event.envelope.timestamp.timestamp()), exemplar)
