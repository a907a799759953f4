"""The Socket.IO gateway process: one aiohttp server on :5004 serving Socket.IO, `/health`, `/health/ready` and
`/metrics`, the presence sweeper, and the bus notifier.

Start-up never waits for a dependency: Redis, NATS and the gRPC peers are checked by readiness. SIGTERM marks the
replica draining (readiness turns red so the load balancer stops sending new sockets), stops the sweeper, closes
every socket (clients reconnect to another replica, where their rooms and presence are waiting in Redis), flushes
queued events and closes the clients.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

from services.contracts.venta.location.v1 import location_pb2, location_pb2_grpc
from services.contracts.venta.user.v1 import user_pb2, user_pb2_grpc
from services.contracts.venta.vendor.v1 import vendor_pb2, vendor_pb2_grpc
from services.kit.auth.settings import build_authenticator
from services.kit.grpc.peers import grpc_service_name, peer_client
from services.kit.grpc.probe import peer_health
from services.kit.lifecycle import close_all
from services.kit.probes import HealthServer
from services.kit.redis_client import async_redis
from services.websocket.compression import decline_per_message_deflate
from services.websocket.config import WebsocketSettings
from services.websocket.fanout import FanOutRedisManager, SocketServer
from services.websocket.live import LiveMap
from services.websocket.namespaces import Limits, UserNamespace, VendorNamespace
from services.websocket.notifications import Notifier
from services.websocket.positions import PositionRecorder
from services.websocket.presence import PresenceStore
from services.websocket.ratelimit import SocketRateLimits

log = logging.getLogger("venta.websocket")


class WebsocketHost:
    def __init__(self, settings: WebsocketSettings) -> None:
        self.settings = settings
        self.service = settings.service_name
        self.drain_delay_s = settings.shutdown_delay_s
        self._stopped = False
        self.redis = async_redis(settings.redis_dsn, timeout_s=settings.redis_timeout_s)
        self.http_client = httpx.AsyncClient(timeout=httpx.Timeout(5.0), follow_redirects=False)
        self.users = peer_client(settings, "users", settings.users_addr, user_pb2_grpc.UserServiceStub)
        self.location = peer_client(settings, "location", settings.location_addr, location_pb2_grpc.LocationServiceStub)
        self.vendors = peer_client(settings, "vendors", settings.vendors_addr, vendor_pb2_grpc.VendorServiceStub)
        self.positions = PositionRecorder(
            self._record_position,
            interval_s=settings.vendor_record_interval_s,
            min_distance_m=settings.vendor_record_min_distance_m,
        )
        self.authenticator, self.jwks = build_authenticator(
            settings, http=self.http_client, users=self.users, cache=self.redis
        )
        self.sio = SocketServer(
            async_mode="aiohttp",
            client_manager=FanOutRedisManager(settings.redis_dsn, channel=settings.socketio_channel),
            cors_allowed_origins=settings.cors_origins or [],
            max_http_buffer_size=settings.max_message_bytes,
            ping_interval=settings.ping_interval_s,
            ping_timeout=settings.ping_timeout_s,
            always_connect=True,  # so a refused socket can be told why (`error`) before it is disconnected
            async_handlers=False,  # one socket's events are handled in the order they were sent
            transports=["websocket", "polling"],
        )
        self.presence = PresenceStore(
            self.redis,
            channel=settings.socketio_channel,
            away_after_s=settings.presence_away_after_s,
            offline_after_s=settings.presence_offline_after_s,
            watch_ttl_s=settings.watch_ttl_s,
        )
        self.notifier = Notifier(settings, client_name=f"{settings.service_name}-notifier")
        self.live = LiveMap(
            sio=self.sio,
            location=self.location,
            positions=self.positions,
            presence=self.presence,
            notifier=self.notifier,
            max_viewport_vendors=settings.max_viewport_vendors,
        )
        rates = SocketRateLimits(
            service=settings.service_name,
            limits={
                "updateUserLocation": settings.user_location_limit,
                "updateVendorLocation": settings.vendor_location_limit,
                "setVendorOpen": settings.vendor_open_limit,
            },
            window_s=settings.rate_window_s,
        )
        shared: dict[str, Any] = {
            "live": self.live,
            "authenticator": self.authenticator,
            "limits": Limits(settings.max_payload_bytes, rates),
        }
        self.user_namespace = UserNamespace(**shared)
        self.vendor_namespace = VendorNamespace(users=self.users, vendors=self.vendors, **shared)
        self.sio.register_namespace(self.user_namespace)
        self.sio.register_namespace(self.vendor_namespace)
        self.http = HealthServer(
            service=settings.service_name,
            checks={
                "redis": self.redis.ping,
                "nats": self.notifier.health,
                "identity": self.jwks.ensure_loaded,
                "users": peer_health(self.users, grpc_service_name(user_pb2, "UserService")),
                "location": peer_health(self.location, grpc_service_name(location_pb2, "LocationService")),
            },
            host=settings.host,
            port=settings.http_port,
        )
        if not settings.per_message_deflate:
            self.http.app.middlewares.append(decline_per_message_deflate)
        self.sio.attach(self.http.app)
        self._sweeper: asyncio.Task[None] | None = None
        self._stop_sweeping = asyncio.Event()

    @property
    def http_port(self) -> int:
        return self.http.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.port}"

    async def start(self) -> None:
        await self.http.start()
        self.notifier.start()
        self._sweeper = asyncio.create_task(
            self.live.sweep_until(self._stop_sweeping, self.settings.presence_sweep_interval_s),
            name="presence-sweeper",
        )
        log.info("websocket gateway serving Socket.IO on :%d", self.http_port, extra={"http_port": self.http_port})

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.http.draining = True
        for namespace in (self.user_namespace, self.vendor_namespace):
            namespace.stopping = True
        self._stop_sweeping.set()
        if self._sweeper is not None:
            try:
                await asyncio.wait_for(self._sweeper, 5)
            except (TimeoutError, asyncio.CancelledError):
                log.warning("presence sweeper did not stop in time")
        await self.sio.shutdown()
        await self.http.stop()  # closes every socket; the disconnect handlers run (presence is left as it is)
        await self.notifier.stop()
        await self.positions.close()
        await close_all(
            (self.users.close, self.location.close, self.vendors.close, self.http_client.aclose, self.redis.aclose),
            owner=self.service,
        )
        log.info("websocket gateway stopped")

    async def _record_position(self, vendor_id: str, owner: str, lat: float, long: float) -> None:
        await self.vendors.unary(
            self.vendors.stub.SetVendorPosition,
            vendor_pb2.VendorPositionData(id=vendor_id, user_id=owner, lat=lat, long=long),
        )

    def drain(self) -> None:
        """Not ready from now on (no new sockets are routed here); the sockets already here keep being served."""
        self.http.draining = True


def build(settings: WebsocketSettings) -> WebsocketHost:
    return WebsocketHost(settings)
