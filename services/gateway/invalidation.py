"""Keeps the vendor read cache honest: every `vendor.*` event on the bus drops the cached answer for that vendor.

The gateway's own writes invalidate at once; this consumer catches every other change (another replica, another
service, a re-sync), durably: the consumer is named, so events published while the gateway was down are applied
when it returns, and all replicas share it (the cache is shared in Redis, so one invalidation serves them all).
Start-up never waits for NATS: the consumer connects in the background, retrying, and the cache TTL bounds
staleness meanwhile. A Redis failure during invalidation is a `RetryLater`: the event comes back, it is not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from services.event_catalog import CATALOG
from services.gateway.cache import VendorCache
from services.kit.events.bus import Event, RetryLater
from services.kit.events.factory import event_bus
from services.kit.events.settings import EventSettings

log = logging.getLogger("venta.gateway.invalidation")

CONSUMER = "gateway-vendor-cache"
PATTERN = "vendor.>"


def vendor_id_of(event: Event) -> str | None:
    """`id` of vendor.created/updated/deleted, `vendorId` of vendor.location.updated."""
    value = getattr(event.data, "id", None) or getattr(event.data, "vendor_id", None)
    return value if isinstance(value, str) else None


class CacheInvalidator:
    def __init__(
        self, settings: EventSettings, cache: VendorCache, *, retry_s: float = 2.0, stop_grace_s: float = 3.0
    ) -> None:
        self.stop_grace_s = stop_grace_s
        self.bus = event_bus(settings, CATALOG, client_name="gateway")
        self.cache = cache
        self.retry_s = retry_s
        self.subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def handle(self, events: Sequence[Event]) -> None:
        for event in events:
            if event.envelope.type == "vendor.created":
                continue  # nothing can be cached for a vendor before it exists (a 404 is never cached)
            vendor_id = vendor_id_of(event)
            if vendor_id is not None and not await self.cache.invalidate(vendor_id):
                raise RetryLater(f"could not invalidate vendor {vendor_id}", delay_s=self.retry_s)

    async def _subscribe(self) -> None:
        while True:
            try:
                await self.bus.connect()
                await self.bus.subscribe(consumer=CONSUMER, pattern=PATTERN, handler=self.handle)
            except Exception as exc:  # noqa: BLE001 - NATS not there yet: keep trying, the TTL covers meanwhile
                log.warning("cache invalidation not subscribed yet (%s); retrying in %.0fs", exc, self.retry_s)
                await self.bus.close()
                await asyncio.sleep(self.retry_s)
                continue
            self.subscribed.set()
            log.info("cache invalidation subscribed to %s", PATTERN)
            return

    def start(self) -> None:
        self._task = asyncio.create_task(self._subscribe(), name="gateway-cache-invalidation")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            # invalidations are quick and idempotent: a short grace, so shutting down never waits on a drain
            await asyncio.wait_for(self.bus.close(), timeout=self.stop_grace_s)
        except TimeoutError:
            log.warning("event bus did not close within %.0fs; unacked events will be redelivered", self.stop_grace_s)
        except Exception as exc:  # noqa: BLE001 - NATS already gone: nothing left to close cleanly
            log.warning("event bus closed with an error (%s); unacked events will be redelivered", exc)
