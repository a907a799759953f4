"""Probes, one contract for every process: `/health` (liveness), `/health/ready` (readiness) and `/metrics`.

Liveness answers as long as the event loop does; readiness runs each dependency check (with a timeout) on every
request and answers 503 naming the failing ones, or while the process drains, so it turns red as soon as, say,
PostgreSQL stops answering and green again when it is back, without a restart. Checks run untraced: a probe every
few seconds must not start a trace each time. Two ways to serve the same answers:

- `HealthServer`, a small aiohttp side server, for the processes whose main port is not HTTP (gRPC services) or
  that serve more on it (Socket.IO attaches to its app; search sync adds `/health/events`);
- `health_router`, routes of an HTTP service's own FastAPI app (no side port), left out of its OpenAPI document.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
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


async def readiness(
    service: str, checks: Mapping[str, ReadinessCheck], timeout_s: float, *, draining: bool
) -> tuple[dict[str, object], int]:
    """The readiness answer (body, status) both servers give."""
    results = await run_checks(service, checks, timeout_s)
    ready = not draining and all(v == "ok" for v in results.values())
    body: dict[str, object] = {"status": "ready" if ready else "not ready", "service": service, "checks": results}
    if draining:
        body["reason"] = "shutting down"
    return body, 200 if ready else 503


def exposition(accept: str) -> tuple[bytes, str]:
    """The metrics in the format asked for (OpenMetrics carries exemplars), with its content type."""
    if "application/openmetrics-text" in accept:
        return generate_openmetrics(REGISTRY), OPENMETRICS_CONTENT_TYPE  # type: ignore[no-untyped-call]
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST  # type: ignore[no-untyped-call]


def metrics_response(request: web.Request) -> web.Response:
    body, content_type = exposition(request.headers.get("Accept", ""))
    return web.Response(body=body, headers={"Content-Type": content_type})


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
        body, status = await readiness(self.service, self.checks, self.check_timeout_s, draining=self.draining)
        return web.json_response(body, status=status)

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


def health_router(
    service: str, checks: Callable[[Request], Mapping[str, ReadinessCheck]], *, timeout_s: float = 2.0
) -> APIRouter:
    """The probe routes of a FastAPI app; `checks(request)` gives the running app's checks (built in its lifespan).

    Draining is read from `app.state.draining`, which `AsgiServiceHost.drain()` sets.
    """
    router = APIRouter(include_in_schema=False)

    @router.get("/health")
    async def live() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @router.get("/health/ready")
    async def ready(request: Request) -> JSONResponse:
        draining = bool(getattr(request.app.state, "draining", False))
        body, status = await readiness(service, checks(request), timeout_s, draining=draining)
        return JSONResponse(body, status_code=status)

    @router.get("/metrics")
    async def metrics(request: Request) -> Response:
        body, content_type = exposition(request.headers.get("accept", ""))
        return Response(body, headers={"Content-Type": content_type})

    return router
