"""`/health`, `/health/ready` and `/metrics` as routes of an HTTP service's own app (no side port needed).

Same contract as the gRPC services' side server (`services.kit.health`): liveness answers while the loop does;
readiness runs every dependency check with a timeout on each request and answers 503 naming the failing ones, or
while the process drains. The routes are left out of the OpenAPI document: they are for probes, not clients.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_CONTENT_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from services.kit.health import ReadinessCheck, run_checks


def health_router(
    service: str, checks: Callable[[Request], Mapping[str, ReadinessCheck]], *, timeout_s: float = 2.0
) -> APIRouter:
    """The probe routes; `checks(request)` gives the checks of the running app (built in its lifespan)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/health")
    async def live() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @router.get("/health/ready")
    async def ready(request: Request) -> JSONResponse:
        results = await run_checks(service, checks(request), timeout_s)
        draining = bool(getattr(request.app.state, "draining", False))
        ok = not draining and all(v == "ok" for v in results.values())
        body: dict[str, object] = {"status": "ready" if ok else "not ready", "service": service, "checks": results}
        if draining:
            body["reason"] = "shutting down"
        return JSONResponse(body, status_code=200 if ok else 503)

    @router.get("/metrics")
    async def metrics(request: Request) -> Response:
        if "application/openmetrics-text" in request.headers.get("accept", ""):
            data = generate_openmetrics(REGISTRY)  # type: ignore[no-untyped-call]
            return Response(data, headers={"Content-Type": OPENMETRICS_CONTENT_TYPE})
        return Response(generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})  # type: ignore[no-untyped-call]

    return router
