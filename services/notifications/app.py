"""The notifications service: its HTTP API (favourites; notifications with cursor pagination, unread count, mark
read), the event consumers that create notifications, and the probes.

The gateway forwards `/v1/users/me/favourites*` and `/v1/notifications*` here with the caller's token, which this
service verifies itself through the kit's one path (defence in depth: it trusts no header a proxy could forge).
Start-up never fails on a dependency that is down: the consumers subscribe in the background and readiness stays
red until they do, as in search sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import redis.asyncio
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.contracts.venta.user.v1 import user_pb2, user_pb2_grpc
from services.contracts.venta.vendor.v1 import vendor_pb2, vendor_pb2_grpc
from services.event_catalog import CATALOG
from services.kit.auth import Authenticator, JwksCache, Principal, bearer_token
from services.kit.auth.settings import build_authenticator
from services.kit.db.session import Database
from services.kit.events.bus import BusUnavailable, EventBus, Subscription, backoff_delay
from services.kit.events.factory import broker_check, event_bus
from services.kit.grpc.client import PeerClient
from services.kit.grpc.peers import grpc_service_name, peer_client
from services.kit.grpc.probe import peer_health
from services.kit.http.envelope import ApiError, ErrorEnvelope, ErrorType
from services.kit.http.handlers import install_error_handlers, render_error
from services.kit.http.middleware import RequestContextMiddleware
from services.kit.http.server import AsgiServiceHost
from services.kit.lifecycle import close_all
from services.kit.probes import ReadinessCheck, health_router
from services.kit.redis_client import async_redis
from services.kit.telemetry import fastapi_telemetry
from services.notifications.config import NotificationSettings
from services.notifications.events import PATTERNS, EventHandler
from services.notifications.push import Pusher
from services.notifications.store import InvalidCursor, NotificationStore, VendorFacts, decode_cursor, encode_cursor
from services.notifications.views import (
    Favourite,
    Favourites,
    MarkedRead,
    Notification,
    NotificationPage,
    UnreadCount,
    favourite_view,
    notification_view,
)

log = logging.getLogger("venta.notifications")

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class Runtime:
    """Everything the service holds open, built in the app's lifespan (inside the event loop)."""

    settings: NotificationSettings
    db: Database
    redis: redis.asyncio.Redis
    http: httpx.AsyncClient
    users: PeerClient[Any]
    vendors: PeerClient[Any]
    authenticator: Authenticator
    jwks: JwksCache
    bus: EventBus
    store: NotificationStore
    handler: EventHandler
    subscriptions: list[Subscription] = field(default_factory=list)
    starting: asyncio.Task[None] | None = None

    @classmethod
    def build(cls, settings: NotificationSettings) -> Runtime:
        db = Database(settings, application_name=settings.service_name)
        cache = async_redis(settings.redis_dsn, timeout_s=settings.redis_timeout_s)
        http = httpx.AsyncClient(timeout=httpx.Timeout(5.0), follow_redirects=False)
        users = peer_client(settings, "users", settings.users_addr, user_pb2_grpc.UserServiceStub)
        authenticator, jwks = build_authenticator(settings, http=http, users=users, cache=cache)
        store = NotificationStore(db)
        pusher = Pusher(settings.redis_dsn, channel=settings.socketio_channel)
        return cls(
            settings=settings,
            db=db,
            redis=cache,
            http=http,
            users=users,
            vendors=peer_client(settings, "vendors", settings.vendors_addr, vendor_pb2_grpc.VendorServiceStub),
            authenticator=authenticator,
            jwks=jwks,
            bus=event_bus(settings, CATALOG, client_name=settings.service_name),
            store=store,
            handler=EventHandler(store, pusher, online_notice_interval_s=settings.online_notice_interval_s),
        )

    async def _subscribe(self) -> None:
        attempt = 0
        while True:
            try:
                await self.bus.connect()
                for suffix, pattern in PATTERNS.items():
                    if any(s.status.consumer.endswith(f"-{suffix}") for s in self.subscriptions):
                        continue
                    name = f"{self.settings.consumer_name}-{suffix}"
                    self.subscriptions.append(
                        await self.bus.subscribe(consumer=name, pattern=pattern, handler=self.handler)
                    )
                log.info("notifications consuming %s", ", ".join(PATTERNS.values()))
                return
            except Exception as exc:  # noqa: BLE001 - NATS not there yet: retry, stay not-ready
                attempt += 1
                if attempt == 1 or attempt % 10 == 0:
                    log.warning("consumers not started yet (%s: %s), retrying", type(exc).__name__, exc)
                await asyncio.sleep(backoff_delay(attempt, base_s=0.2, max_s=self.settings.start_retry_max_s))

    def start(self) -> None:
        self.starting = asyncio.create_task(self._subscribe(), name="notifications-subscribe")

    async def _consuming(self) -> None:
        if len(self.subscriptions) < len(PATTERNS):
            raise BusUnavailable("consumers not subscribed yet")

    async def _redis_ping(self) -> None:
        await self.redis.ping()

    def checks(self) -> dict[str, ReadinessCheck]:
        return {
            "database": self.db.ping,
            "redis": self._redis_ping,
            broker_check(self.settings): self.bus.health,  # on Redis Streams it replaces the plain ping
            "consumers": self._consuming,
            "identity": self.jwks.ensure_loaded,
            "vendors": peer_health(self.vendors, grpc_service_name(vendor_pb2, "VendorService")),
            "users": peer_health(self.users, grpc_service_name(user_pb2, "UserService")),
        }

    async def close(self) -> None:
        if self.starting is not None and not self.starting.done():
            self.starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.starting
        await close_all(
            [self.bus.close, self.users.close, self.vendors.close, self.http.aclose, self.redis.aclose, self.db.close],
            owner="notifications",
        )


async def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
_bearer = HTTPBearer(auto_error=False, description="A Clerk session token, or one from the local identity provider")


async def _caller(
    request: Request, runtime: RuntimeDep, _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> uuid.UUID:
    principal: Principal = await runtime.authenticator.authenticate(bearer_token(request.headers.get("authorization")))
    return uuid.UUID(principal.user_id)


Caller = Annotated[uuid.UUID, Depends(_caller)]
ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorEnvelope} for s in (400, 401, 404, 500, 502)}


async def _vendor(runtime: Runtime, vendor_id: uuid.UUID) -> VendorFacts:
    """The vendor as the vendor service has it now (NOT_FOUND becomes 404 through the error handlers)."""
    answer = await runtime.vendors.unary(
        runtime.vendors.stub.GetVendorById, vendor_pb2.VendorLookupByIdData(id=str(vendor_id))
    )
    vendor = answer.vendor
    return VendorFacts(
        id=uuid.UUID(vendor.id),
        owner_id=uuid.UUID(vendor.owner_id),
        name=vendor.name,
        open=vendor.open,
        updated_at=datetime.fromisoformat(vendor.updated_at),
    )


def create_app(settings: NotificationSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.build(settings)
        app.state.runtime = runtime
        runtime.start()
        try:
            yield
        finally:
            await runtime.close()

    app = FastAPI(
        title="Venta notifications",
        version="1.0.0",
        lifespan=lifespan,
        redoc_url=None,
        telemetry=fastapi_telemetry(),
    )
    app.state.settings = settings
    app.state.draining = False
    install_error_handlers(app)
    app.include_router(health_router(settings.service_name, lambda r: r.app.state.runtime.checks()))

    @app.get("/v1/users/me/favourites", tags=["favourites"], responses=ERRORS, summary="The caller's favourites")
    async def list_favourites(caller: Caller, runtime: RuntimeDep) -> Favourites:
        return Favourites(favourites=[favourite_view(r) for r in await runtime.store.favourites(caller)])

    @app.put(
        "/v1/users/me/favourites/{vendor_id}",
        tags=["favourites"],
        responses=ERRORS,
        summary="Add a vendor to the caller's favourites (idempotent)",
    )
    async def add_favourite(vendor_id: uuid.UUID, caller: Caller, runtime: RuntimeDep) -> Favourite:
        vendor = await _vendor(runtime, vendor_id)
        favourite, created = await runtime.store.add_favourite(caller, vendor)
        if created:
            await runtime.handler.pusher.push(created)
        return favourite_view(favourite)

    @app.delete(
        "/v1/users/me/favourites/{vendor_id}",
        tags=["favourites"],
        status_code=204,
        responses=ERRORS,
        summary="Remove a vendor from the caller's favourites (idempotent)",
    )
    async def remove_favourite(vendor_id: uuid.UUID, caller: Caller, runtime: RuntimeDep) -> Response:
        await runtime.store.remove_favourite(caller, vendor_id)
        return Response(status_code=204)

    @app.get("/v1/notifications", tags=["notifications"], responses=ERRORS, summary="The caller's notifications")
    async def list_notifications(
        caller: Caller,
        runtime: RuntimeDep,
        cursor: Annotated[str | None, Query(max_length=64, description="`nextCursor` of the previous page")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 20,
        unread: Annotated[bool, Query(description="only unread ones")] = False,
    ) -> NotificationPage:
        if limit > settings.page_size_max:
            raise ApiError(ErrorType.VALIDATION, "LIMIT_TOO_LARGE", f"limit is at most {settings.page_size_max}")
        try:
            before = decode_cursor(cursor) if cursor is not None else None
        except InvalidCursor as exc:
            raise ApiError(ErrorType.VALIDATION, "INVALID_CURSOR", str(exc)) from exc
        rows, next_seq = await runtime.store.page(caller, before=before, limit=limit, unread_only=unread)
        return NotificationPage(
            notifications=[notification_view(r) for r in rows],
            next_cursor=encode_cursor(next_seq) if next_seq is not None else None,
        )

    @app.get("/v1/notifications/unread-count", tags=["notifications"], responses=ERRORS, summary="Unread count")
    async def unread_count(caller: Caller, runtime: RuntimeDep) -> UnreadCount:
        return UnreadCount(unread=await runtime.store.unread(caller))

    @app.post("/v1/notifications/read-all", tags=["notifications"], responses=ERRORS, summary="Mark all read")
    async def mark_all_read(caller: Caller, runtime: RuntimeDep) -> MarkedRead:
        return MarkedRead(marked=await runtime.store.mark_all_read(caller))

    @app.post(
        "/v1/notifications/{notification_id}/read", tags=["notifications"], responses=ERRORS, summary="Mark one read"
    )
    async def mark_read(notification_id: uuid.UUID, caller: Caller, runtime: RuntimeDep) -> Notification:
        row = await runtime.store.mark_read(caller, notification_id)
        if row is None:
            raise ApiError(ErrorType.NOT_FOUND, "NOTIFICATION_NOT_FOUND", "no such notification of yours")
        return notification_view(row)

    app.add_middleware(RequestContextMiddleware, service=settings.service_name, on_error=render_error)
    return app


def build(settings: NotificationSettings) -> AsgiServiceHost:
    """What `venta serve notifications` runs."""
    return AsgiServiceHost.from_settings(settings, create_app(settings))
