"""The platform's services started in-process, as production starts them (`build(settings)`), on random ports.

Shared by the HTTP gateway's and the Socket.IO gateway's tests (and any test needing the gRPC services, the local
identity provider and search sync on real PostgreSQL/NATS/Redis). `Hosts` stops what it started, newest first.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from services.devkit.servers import Nats, Postgres, Redis, free_port
from services.gateway.app import build as build_gateway
from services.gateway.config import GatewaySettings
from services.identity.app import build as build_identity
from services.identity.config import IdentitySettings
from services.identity.keys import KeyRing
from services.kit.db.migrations import ensure_database, upgrade
from services.kit.grpc.server import GrpcServiceHost
from services.kit.http.server import AsgiServiceHost
from services.location import app as location_app
from services.location.config import LocationSettings
from services.notifications import app as notifications_app
from services.notifications.config import NotificationSettings
from services.search.provider import SearchProvider
from services.search_sync.app import SearchSyncHost
from services.search_sync.config import SearchSyncSettings
from services.users import app as users_app
from services.users.config import UserSettings
from services.vendors import app as vendors_app
from services.vendors.config import VendorSettings
from services.websocket.app import WebsocketHost
from services.websocket.config import WebsocketSettings

CLERK_SECRET = "whsec_" + "dGVzdC1zaWduaW5nLXNlY3JldC1vZi1jbGVyay13ZWJob29rcw=="
REVENUECAT_SECRET = "rc-shared-secret-for-tests"
# How often a token naming an unknown key may refetch the issuer's keys (short: the rotation tests wait it out).
JWKS_MIN_REFRESH_S = 1.0


@dataclass
class Platform:
    vendors: GrpcServiceHost
    users: GrpcServiceHost
    location: GrpcServiceHost
    identity: AsgiServiceHost
    gateway: AsgiServiceHost
    settings: GatewaySettings
    redis_url: str
    search: SearchProvider

    @property
    def url(self) -> str:
        return self.gateway.url

    @property
    def keys(self) -> KeyRing:
        keys: KeyRing = self.identity.app.state.keys  # type: ignore[attr-defined]
        return keys

    @property
    def issuer(self) -> str:
        return self.identity.url

    async def token(self, user: str | None = None) -> str:
        return await mint_token(self.identity, user or new_clerk_id())

    async def auth(self, user: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token(user)}"}


async def mint_token(identity: AsgiServiceHost, clerk_id: str) -> str:
    """A token from the local identity provider (which also creates the user)."""
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{identity.url}/v1/tokens", json={"user": clerk_id})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


def new_clerk_id() -> str:
    return f"user_{uuid.uuid4().hex[:20]}"


GrpcStarter = Callable[..., Awaitable[GrpcServiceHost]]
GatewayStarter = Callable[..., Awaitable[AsgiServiceHost]]


class Hosts:
    """Starts hosts and stops them all, newest first, when the fixture ends."""

    def __init__(self, postgres: Postgres, nats: Nats, redis: Redis) -> None:
        self.postgres, self.nats, self.redis = postgres, nats, redis
        self.grpc: list[GrpcServiceHost] = []
        self.http: list[AsgiServiceHost] = []
        self.sync: list[SearchSyncHost] = []
        self.sockets: list[WebsocketHost] = []
        self.search_database = f"gw_search_{uuid.uuid4().hex[:8]}"

    async def start_grpc(
        self,
        build: Callable[[Any], GrpcServiceHost],
        settings_cls: type[Any],
        migrations: Path,
        *,
        database: str | None = None,
        **overrides: Any,
    ) -> GrpcServiceHost:
        overrides.setdefault("grpc_port", 0)
        settings = settings_cls(
            http_port=0,
            host="127.0.0.1",
            shutdown_grace_s=1.0,
            nats_url=self.nats.url,
            database_url=self.postgres.url_for(database or f"gw_{uuid.uuid4().hex[:12]}"),
            **overrides,
        )
        await upgrade(migrations, settings.dsn)
        host = build(settings)
        await host.start()
        self.grpc.append(host)
        return host

    async def start_services(self) -> tuple[GrpcServiceHost, GrpcServiceHost, GrpcServiceHost]:
        vendors = await self.start_grpc(vendors_app.build, VendorSettings, vendors_app.MIGRATIONS)
        location = await self.start_grpc(location_app.build, LocationSettings, location_app.MIGRATIONS)
        users = await self.start_grpc(
            users_app.build, UserSettings, users_app.MIGRATIONS, vendors_addr=f"127.0.0.1:{vendors.grpc_port}"
        )
        return vendors, users, location

    async def start_search_sync(self) -> SearchSyncHost:
        """Search sync on its own index database and its own durable consumer, so tests never share an index."""
        settings = SearchSyncSettings(
            http_port=0,
            host="127.0.0.1",
            nats_url=self.nats.url,
            consumer_name=f"sync-{uuid.uuid4().hex[:8]}",
            database_url=self.postgres.url_for(self.search_database),
            consumer_fetch_timeout_s=0.2,
        )
        await ensure_database(settings.dsn)  # before two components race to create it
        host = SearchSyncHost(settings)
        await host.start()
        await host.provider.open()
        self.sync.append(host)
        return host

    async def start_identity(self, users: GrpcServiceHost, **overrides: Any) -> AsgiServiceHost:
        port = free_port()
        settings = IdentitySettings(
            http_port=port,
            identity_issuer=f"http://127.0.0.1:{port}",
            users_addr=f"127.0.0.1:{users.grpc_port}",
            shutdown_grace_s=1.0,
            **overrides,
        )
        host = build_identity(settings)
        await host.start()
        self.http.append(host)
        return host

    def gateway_settings(
        self,
        *,
        vendors: GrpcServiceHost,
        users: GrpcServiceHost,
        location: GrpcServiceHost,
        identity: AsgiServiceHost,
        upload_dir: Path,
        **overrides: Any,
    ) -> GatewaySettings:
        values: dict[str, Any] = {
            "http_port": 0,
            "host": "127.0.0.1",
            "shutdown_grace_s": 1.0,
            "vendors_addr": f"127.0.0.1:{vendors.grpc_port}",
            "users_addr": f"127.0.0.1:{users.grpc_port}",
            "location_addr": f"127.0.0.1:{location.grpc_port}",
            "redis_url": self.redis.url,
            "search_database_url": self.postgres.url_for(self.search_database),
            "nats_url": self.nats.url,
            "auth_issuer": identity.url,
            "upload_dir": upload_dir,
            "clerk_webhook_secret": CLERK_SECRET,
            "revenuecat_webhook_secret": REVENUECAT_SECRET,
            "rate_limit": "100000/60 seconds",
            "rate_limit_routes": {},
            "jwks_min_refresh_interval_s": JWKS_MIN_REFRESH_S,
            "cache_invalidation_events": False,  # the module's platform turns it on; extra gateways need not
        }
        values.update(overrides)
        return GatewaySettings(**values)

    def gateway_settings_over(
        self, platform: Platform, upload_dir: Path, *, vendors: GrpcServiceHost | None = None, **overrides: Any
    ) -> GatewaySettings:
        """Settings of another gateway over `platform`'s services (a test's own limits, breakers, stand-ins...);
        `vendors` puts a vendor service of the test's own (one it stops) in place of the platform's."""
        return self.gateway_settings(
            vendors=vendors or platform.vendors,
            users=platform.users,
            location=platform.location,
            identity=platform.identity,
            upload_dir=upload_dir,
            **overrides,
        )

    async def start_gateway(self, settings: GatewaySettings) -> AsgiServiceHost:
        host = build_gateway(settings)
        await host.start()
        self.http.append(host)
        return host

    async def start_notifications(
        self,
        *,
        vendors: GrpcServiceHost,
        users: GrpcServiceHost,
        identity: AsgiServiceHost,
        socketio_channel: str,
        **overrides: Any,
    ) -> AsgiServiceHost:
        """The notifications service on a database and durable consumers of its own, pushing on `socketio_channel`."""
        values: dict[str, Any] = {
            "http_port": 0,
            "host": "127.0.0.1",
            "shutdown_grace_s": 1.0,
            "database_url": self.postgres.url_for(f"gw_notifications_{uuid.uuid4().hex[:8]}"),
            "redis_url": self.redis.url,
            "nats_url": self.nats.url,
            "auth_issuer": identity.url,
            "jwks_min_refresh_interval_s": JWKS_MIN_REFRESH_S,
            "users_addr": f"127.0.0.1:{users.grpc_port}",
            "vendors_addr": f"127.0.0.1:{vendors.grpc_port}",
            "socketio_channel": socketio_channel,
            "consumer_name": f"notifications-{uuid.uuid4().hex[:8]}",
            "consumer_fetch_timeout_s": 0.2,
        }
        values.update(overrides)
        settings = NotificationSettings(**values)
        await upgrade(notifications_app.MIGRATIONS, settings.dsn)
        host = notifications_app.build(settings)
        await host.start()
        self.http.append(host)
        return host

    def websocket_settings(
        self,
        *,
        users: GrpcServiceHost,
        location: GrpcServiceHost,
        identity: AsgiServiceHost,
        vendors: GrpcServiceHost | None = None,
        **overrides: Any,
    ) -> WebsocketSettings:
        values: dict[str, Any] = {
            "http_port": 0,
            "host": "127.0.0.1",
            "shutdown_grace_s": 1.0,
            "redis_url": self.redis.url,
            "nats_url": self.nats.url,
            "auth_issuer": identity.url,
            "jwks_min_refresh_interval_s": JWKS_MIN_REFRESH_S,
            "users_addr": f"127.0.0.1:{users.grpc_port}",
            "location_addr": f"127.0.0.1:{location.grpc_port}",
        }
        if vendors is not None:  # the vendor service records live positions and opens vendors
            values["vendors_addr"] = f"127.0.0.1:{vendors.grpc_port}"
        values.update(overrides)
        return WebsocketSettings(**values)

    async def start_websocket(self, settings: WebsocketSettings) -> WebsocketHost:
        host = WebsocketHost(settings)
        await host.start()
        self.sockets.append(host)
        return host

    async def stop(self) -> None:
        for socket_host in reversed(self.sockets):
            await socket_host.stop()
        for http in reversed(self.http):
            await http.stop()
        for sync in self.sync:
            try:  # its NATS drain can wait out nats-py's 30 s drain timeout; nothing to lose in a test
                await asyncio.wait_for(sync.stop(), 5)
            except TimeoutError:
                pass
        for host in reversed(self.grpc):
            await host.stop()
