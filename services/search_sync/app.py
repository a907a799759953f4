"""The search sync process: the HTTP side server (health, readiness, metrics, `/health/events`) and the consumer.

Start-up never fails on a dependency that is down: connecting to the search engine and to NATS is retried in the
background (readiness stays red until both answer and the consumer is subscribed), so the service converges by
itself after a cluster-wide restart. SIGTERM stops fetching, lets the batch in hand finish, and drains the connection
to the event broker (NATS, or Redis with `VENTA_EVENTS_PROVIDER=redis`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import asdict

from aiohttp import web

from services.event_catalog import CATALOG
from services.kit.events.bus import BusUnavailable, Subscription, backoff_delay
from services.kit.events.factory import broker_check, event_bus
from services.kit.probes import HealthServer
from services.search.factory import build_search_provider
from services.search.provider import SearchProvider
from services.search_sync.config import SearchSyncSettings
from services.search_sync.indexer import Indexer

log = logging.getLogger("venta.search_sync")

PATTERN = "vendor.>"


class SearchSyncHost:
    def __init__(self, settings: SearchSyncSettings, provider: SearchProvider | None = None) -> None:
        self.settings = settings
        self.service = settings.service_name
        self.drain_delay_s = 0.0  # nothing calls search sync (it consumes): nothing has to forget it first
        self.provider = provider or build_search_provider(settings, default_dsn=settings.dsn)
        self.bus = event_bus(settings, CATALOG, client_name=settings.service_name)
        self.indexer = Indexer(self.provider)
        self.subscription: Subscription | None = None
        self.http = HealthServer(
            service=settings.service_name,
            checks={
                broker_check(settings): self.bus.health,
                "search": self.provider.ping,
                "consumer": self._consuming,
            },
            host=settings.host,
            port=settings.http_port,
            extra_routes={"/health/events": self._events},
        )
        self._starting: asyncio.Task[None] | None = None

    @property
    def http_port(self) -> int:
        return self.http.port

    async def _consuming(self) -> None:
        if self.subscription is None:
            raise BusUnavailable("consumer not subscribed yet")

    async def _events(self, _: web.Request) -> web.Response:
        if self.subscription is None:
            return web.json_response({"status": "starting", "consumer": self.settings.consumer_name}, status=503)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.subscription.refresh_status(), 2.0)
        status = asdict(self.subscription.status)
        body = {
            "status": "ok",
            "consumer": status["consumer"],
            "consumed": status["consumed"],
            "failed": status["failed"],
            "deadLettered": status["dead_lettered"],
            "deadLetterReasons": status["dead_letter_reasons"],
            "deadLetterStreamTotal": status["dead_letter_stream_total"],
            "redelivered": status["redelivered"],
            "consumerLag": status["lag"],
            "ackPending": status["ack_pending"],
            "lastError": status["last_error"],
            "indexWrites": self.indexer.writes,
            "provider": self.provider.name,
        }
        return web.json_response(body)

    async def _connect(self) -> None:
        attempt = 0
        while True:
            try:
                await self.provider.open()
                await self.bus.connect()
                self.subscription = await self.bus.subscribe(
                    consumer=self.settings.consumer_name, pattern=PATTERN, handler=self.indexer
                )
                log.info("search sync consuming %s into %s/%s", PATTERN, self.provider.name, self.provider.index)
                return
            except Exception as exc:  # noqa: BLE001 - a dependency is not there yet: retry, stay not-ready
                attempt += 1
                if attempt == 1 or attempt % 10 == 0:
                    log.warning("search sync not started yet (%s: %s), retrying", type(exc).__name__, exc)
                await asyncio.sleep(backoff_delay(attempt, base_s=0.2, max_s=self.settings.start_retry_max_s))

    async def start(self) -> None:
        await self.http.start()
        self._starting = asyncio.create_task(self._connect(), name="search-sync-start")
        log.info("search sync serving HTTP on :%d", self.http_port, extra={"http_port": self.http_port})

    async def wait_consuming(self, timeout_s: float = 30.0) -> None:
        assert self._starting is not None
        await asyncio.wait_for(asyncio.shield(self._starting), timeout_s)

    async def stop(self) -> None:
        self.http.draining = True
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starting
        await self.bus.close()
        await self.provider.close()
        await self.http.stop()
        log.info("search sync stopped")

    def drain(self) -> None:
        self.http.draining = True


def build(settings: SearchSyncSettings) -> SearchSyncHost:
    return SearchSyncHost(settings)
