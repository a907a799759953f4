"""The gateway app: routers, error envelope, middleware stack, OpenAPI document, and the host that serves it.

Middleware, outermost first: request context (request id, trace span, metrics by route template, last-resort
error answer), security headers, CORS (origins from configuration), gzip, body-size limit, and the cached-read path
(`hot_reads`: a cached vendor answered before routing). Rate limiting is a dependency of the API routers (it needs
the matched route), run before authentication.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.openapi.utils import get_openapi

from services.gateway.config import GatewaySettings, get_settings
from services.gateway.deps import RateLimited
from services.gateway.hot_reads import CachedVendorReads
from services.gateway.ratelimit import RateLimitHeaders
from services.gateway.resources import Resources
from services.gateway.routes import nearby, notifications, search, uploads, users, vendors, webhooks
from services.kit.http.handlers import install_error_handlers, render_error
from services.kit.http.middleware import BodySizeLimitMiddleware, RequestContextMiddleware, SecurityHeadersMiddleware
from services.kit.http.server import AsgiServiceHost
from services.kit.probes import health_router
from services.kit.telemetry import fastapi_telemetry

VERSION = "1.0.0"
# names the peers give fields -> names the HTTP client sent them under
FIELD_NAMES = {
    "image_url": "imageUrl",
    "sw_location": "sw",
    "sw_location.lat": "sw",
    "sw_location.long": "sw",
    "ne_location": "ne",
    "ne_location.lat": "ne",
    "ne_location.long": "ne",
    # HandleSubscriptionEvent's fields, as RevenueCat's webhook names them
    "clerk_user_id": "event.subscriber_attributes.clerkUserId",
    "event_id": "event.id",
    "event_timestamp_ms": "event.event_timestamp_ms",
    "product_id": "event.product_id",
    "new_product_id": "event.new_product_id",
    "period_type": "event.period_type",
    "purchased_at_ms": "event.purchased_at_ms",
    "expiration_at_ms": "event.expiration_at_ms",
    "transaction_id": "event.transaction_id",
    "original_transaction_id": "event.original_transaction_id",
}
UPLOAD_PATHS = ("/v1/uploads/image", "/upload/image")
COMPRESS_FROM_BYTES = 1024
"""Answers this large or larger are gzipped for clients that accept it; smaller ones gain less than it costs."""


def api_router() -> APIRouter:
    api = APIRouter(dependencies=[RateLimited])
    # fixed paths (/v1/vendors/nearby, /search) before /v1/vendors/{id}, which would otherwise match them
    for module in (nearby, search, vendors, users, notifications, uploads, webhooks):
        api.include_router(module.router)
    return api


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The document without FastAPI's 422 entries: validation errors are 400s in the envelope here."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes, description=app.description)
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    return build


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    """The gateway; `settings` default to the environment's (tests pass their own)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resources = Resources.build(settings)
        resources.start()
        app.state.resources = resources
        try:
            yield
        finally:
            await resources.close()

    app = FastAPI(
        title="Venta API",
        version=VERSION,
        description="The public API of Venta. Every error has the shape `{error: {type, code, message, ...}}`.",
        lifespan=lifespan,
        redoc_url=None,
        telemetry=fastapi_telemetry(),
    )
    app.state.draining = False
    app.state.settings = settings
    install_error_handlers(app, field_names=FIELD_NAMES)
    app.include_router(health_router(settings.service_name, lambda request: request.app.state.resources.checks()))
    app.include_router(api_router())
    app.openapi = _openapi(app)  # type: ignore[method-assign]

    # added innermost first: the last one added wraps all the others
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(
        BodySizeLimitMiddleware,
        default=settings.max_body_bytes,
        limits={path: settings.upload_max_bytes + 64 * 1024 for path in UPLOAD_PATHS},
        on_error=render_error,
    )
    app.add_middleware(GZipMiddleware, minimum_size=COMPRESS_FROM_BYTES)
    app.add_middleware(CachedVendorReads, compress_from=COMPRESS_FROM_BYTES)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining"],
            max_age=600,
        )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestContextMiddleware, service=settings.service_name, on_error=render_error)
    return app


def build(settings: GatewaySettings) -> AsgiServiceHost:
    """What `venta serve gateway` runs."""
    return AsgiServiceHost.from_settings(
        settings, create_app(settings), forwarded_allow_ips=settings.forwarded_allow_ips
    )
