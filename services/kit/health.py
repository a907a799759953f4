"""The small HTTP side server every service runs: `/health`, `/health/ready` and `/metrics`.

Liveness answers as long as the event loop does; readiness runs each dependency check (with a timeout) on every
request, so it turns red as soon as, say, PostgreSQL stops answering and green again when it is back, without a
restart. Services may add routes (search sync adds `/health/events`). Checks run untraced: a probe every few seconds
must not start a trace each time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_CONTENT_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from services.kit.metrics import DEPENDENCY_UP
from services.kit.telemetry import untraced

ReadinessCheck = Callable[[], Awaitable[object]]
"""Raises (or times out) when the dependency is not usable."""


async def run_checks(service: str, checks: Mapping[str, ReadinessCheck], timeout_s: float) -> dict[str, str]:
    async def one(name: str, check: ReadinessCheck) -> tuple[str, str]:
        try:
            await asyncio.wait_for(check(), timeout_s)
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported by type
            DEPENDENCY_UP.labels(service, name).set(0)
            return name, f"failing: {type(exc).__name__}"
        DEPENDENCY_UP.labels(service, name).set(1)
        return name, "ok"

    with untraced():  # the tasks gather creates inherit the suppression
        return dict(await asyncio.gather(*(one(n, c) for n, c in checks.items())))


def metrics_response(request: web.Request) -> web.Response:
    if "application/openmetrics-text" in request.headers.get("Accept", ""):
        openmetrics = generate_openmetrics(REGISTRY)  # type: ignore[no-untyped-call]
        return web.Response(body=openmetrics, headers={"Content-Type": OPENMETRICS_CONTENT_TYPE})
    body = generate_latest(REGISTRY)  # type: ignore[no-untyped-call]
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


class HealthServer:
    def __init__(
        self,
        *,
        service: str,
        checks: Mapping[str, ReadinessCheck],
        host: str,
        port: int,
        check_timeout_s: float = 2.0,
        extra_routes: Mapping[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] | None = None,
    ) -> None:
        self.service = service
        self.checks = dict(checks)
        self.host = host
        self.port = port
        self.check_timeout_s = check_timeout_s
        self.draining = False
        self._app = web.Application()
        self._app.router.add_get("/health", self._live)
        self._app.router.add_get("/health/ready", self._ready)
        self._app.router.add_get("/metrics", self._metrics)
        for path, handler in (extra_routes or {}).items():
            self._app.router.add_get(path, handler)
        self._runner: web.AppRunner | None = None

    @property
    def app(self) -> web.Application:
        """The aiohttp application, for a service that serves more than probes on this port (Socket.IO)."""
        return self._app

    async def _live(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "service": self.service})

    async def _ready(self, _: web.Request) -> web.Response:
        results = await run_checks(self.service, self.checks, self.check_timeout_s)
        ready = not self.draining and all(v == "ok" for v in results.values())
        body = {"status": "ready" if ready else "not ready", "service": self.service, "checks": results}
        if self.draining:
            body["reason"] = "shutting down"
        return web.json_response(body, status=200 if ready else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        return metrics_response(request)

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            server = site._server
            assert server is not None and server.sockets  # type: ignore[attr-defined]
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
