"""A moving vendor's position, written into its vendor record: throttled, and always ending on the latest position.

The live map moves a vendor every couple of seconds; its record (and through `vendor.location.updated`, the search
index) does not need every step, and the vendor service must not take one transaction per step per vendor. So per
vendor at most one write per `interval_s`, skipped when the vendor moved less than `min_distance_m` since the last
write; a burst of moves ends with a write of the last one (trailing), so a vendor that stops is found where it
stopped. Writes run in the background: a slow or failing vendor service never slows the live map; a failed write
is retried at the next interval with the position known then. Per replica, which is enough: a vendor's socket is
on one replica at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from services.kit.geo import distance_m

log = logging.getLogger("venta.websocket.positions")

WritePosition = Callable[[str, str, float, float], Awaitable[object]]
"""`(vendor_id, owner_user_id, lat, long)` -> the vendor service's SetVendorPosition."""


@dataclass
class _Vendor:
    owner: str
    pending: tuple[float, float] | None = None
    written: tuple[float, float] | None = None
    written_at: float = -math.inf
    task: asyncio.Task[None] | None = None


class PositionRecorder:
    def __init__(self, write: WritePosition, *, interval_s: float, min_distance_m: float) -> None:
        self.write = write
        self.interval_s = interval_s
        self.min_distance_m = min_distance_m
        self.writes = 0
        self.failures = 0
        self._vendors: dict[str, _Vendor] = {}
        self._closing = asyncio.Event()

    def moved(self, vendor_id: str, owner: str, lat: float, long: float) -> None:
        """Note a move; the write happens now, or at the end of the vendor's interval with the latest position."""
        if self._closing.is_set():
            return
        vendor = self._vendors.setdefault(vendor_id, _Vendor(owner))
        vendor.owner = owner
        vendor.pending = (lat, long)
        if vendor.task is None or vendor.task.done():
            vendor.task = asyncio.create_task(self._flush(vendor_id, vendor), name=f"position-{vendor_id}")

    def forget(self, vendor_id: str) -> None:
        """The vendor went offline: drop its state once nothing is pending (a pending position is still written)."""
        vendor = self._vendors.get(vendor_id)
        if vendor is not None and vendor.pending is None and (vendor.task is None or vendor.task.done()):
            del self._vendors[vendor_id]

    async def _flush(self, vendor_id: str, vendor: _Vendor) -> None:
        while vendor.pending is not None:
            wait = vendor.written_at + self.interval_s - time.monotonic()
            if wait > 0 and not self._closing.is_set():
                with contextlib.suppress(TimeoutError):  # closing cuts the wait short
                    await asyncio.wait_for(self._closing.wait(), wait)
            position, vendor.pending = vendor.pending, None
            if position is None:
                return
            if vendor.written is not None and distance_m(*vendor.written, *position) < self.min_distance_m:
                continue  # parked: nothing worth a write
            try:
                await self.write(vendor_id, vendor.owner, *position)
            except Exception as exc:  # noqa: BLE001 - the live map goes on; the next interval retries
                self.failures += 1
                log.warning("could not record the position of vendor %s (%s)", vendor_id, exc)
                if vendor.pending is None:
                    vendor.pending = position
                vendor.written_at = time.monotonic()
                if self._closing.is_set():
                    return
                continue
            self.writes += 1
            vendor.written, vendor.written_at = position, time.monotonic()

    async def close(self, timeout_s: float = 5.0) -> None:
        """Write what is pending now (no more waiting for intervals), within `timeout_s`; then stop."""
        self._closing.set()
        tasks = [v.task for v in self._vendors.values() if v.task is not None and not v.task.done()]
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=timeout_s)
        for task in late:
            task.cancel()
        for task in late:
            with contextlib.suppress(asyncio.CancelledError):
                await task
