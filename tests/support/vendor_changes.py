"""Vendor changes through a platform's public gateway, counted, and what JetStream says about its streams.

`VendorChanges` makes a fixed number of changes (creates, then renames) from several concurrent clients, each client
owning its own vendors so that "the latest acknowledged name" of every vendor is well defined; a change whose answer
was lost or refused is sent again (renames are idempotent), as a mobile client would. `jetstream_streams` reads a
NATS server's own monitoring endpoint (`/jsz`) on its pod address: stream copies, leaders and message counts.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

NATS_MONITOR_PORT = 8222


def jetstream_streams(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The streams one NATS server holds a copy of, by name, with config, cluster (leader, replicas) and state."""
    ip = pod["status"]["podIP"]
    params = {"accounts": "true", "streams": "true", "config": "true"}
    jsz = httpx.get(f"http://{ip}:{NATS_MONITOR_PORT}/jsz", params=params, timeout=5).json()
    return {s["name"]: s for account in jsz.get("account_details") or [] for s in account.get("stream_detail") or []}


@dataclass
class VendorChanges:
    """`total` changes: `vendors` creates, then renames round-robin over them, from `clients` concurrent clients."""

    api: httpx.AsyncClient  # the gateway, with a bearer token
    total: int = 1000
    vendors: int = 50
    clients: int = 5
    latest: dict[str, str] = field(default_factory=dict)  # vendor id -> its latest acknowledged name
    done: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    retry_samples: list[str] = field(default_factory=list)

    async def run(self) -> None:
        renames = self.total - self.vendors
        assert renames >= 0 and self.vendors % self.clients == 0
        per_client = self.vendors // self.clients
        await asyncio.gather(*(self._client(n, per_client, renames // self.clients) for n in range(self.clients)))
        assert self.done == self.total, f"{self.done} changes made of {self.total}"

    async def reached(self, count: int, run: asyncio.Task[None], timeout_s: float = 600) -> None:
        """Wait until `count` changes are made (or the run ended: its outcome then tells why)."""
        deadline = time.monotonic() + timeout_s
        while self.done < count and not run.done():
            assert time.monotonic() < deadline, f"only {self.done} changes made in {timeout_s:.0f} s"
            await asyncio.sleep(0.2)

    async def _client(self, n: int, vendors: int, renames: int) -> None:
        mine: list[str] = []
        for i in range(vendors):
            name = f"cluster {n}-{i} {uuid.uuid4().hex[:6]}"
            created = await self._send("POST", "/v1/vendors", {"name": name, "description": "nats cluster e2e"})
            mine.append(created["id"])
            self.latest[created["id"]] = name
        for round_ in range(renames // vendors + 1):
            for vendor_id in mine:
                if renames <= 0:
                    return
                name = f"cluster {n} {vendor_id[:8]} r{round_} {uuid.uuid4().hex[:6]}"
                await self._send("PATCH", f"/v1/vendors/{vendor_id}", {"name": name})
                self.latest[vendor_id] = name
                renames -= 1

    async def _send(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One change, sent again while it fails (for up to two minutes); a create is only sent again when the
        gateway answered that it failed, so that a lost answer cannot leave a vendor the test does not know."""
        deadline = time.monotonic() + 120
        while True:
            try:
                answer = await self.api.request(method, path, json=body)
                if answer.status_code in (200, 201):
                    self.done += 1
                    return dict(answer.json())
                problem = f"{answer.status_code} {answer.text[:200]}"
            except httpx.HTTPError as error:
                if method == "POST":
                    raise
                problem = repr(error)
            self.retries[method] += 1
            if len(self.retry_samples) < 20:
                self.retry_samples.append(f"{time.strftime('%H:%M:%S')} {method} {path}: {problem}")
            assert time.monotonic() < deadline, f"{method} {path} kept failing: {problem}"
            await asyncio.sleep(0.5)
