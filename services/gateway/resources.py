"""Everything the gateway holds open while it runs, built in the app's lifespan (inside the event loop).

One breaker-wrapped client per gRPC peer (deadlines on every call; the breakers' state shared through Redis when
`VENTA_BREAKER_REDIS` is set), one Redis client, the authenticator, the vendor read cache, the rate limiter and the
image store. `checks()` is what readiness runs: Redis, the identity provider's keys, and each peer's gRPC health.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import httpx
import pybreaker
import redis.asyncio
from svix.webhooks import Webhook

from services.contracts.venta.location.v1 import location_pb2, location_pb2_grpc
from services.contracts.venta.user.v1 import user_pb2, user_pb2_grpc
from services.contracts.venta.vendor.v1 import vendor_pb2, vendor_pb2_grpc
from services.gateway.cache import VendorCache
from services.gateway.config import GatewaySettings
from services.gateway.images import CloudinaryImageStore, ImageStore, LocalImageStore
from services.gateway.invalidation import CacheInvalidator
from services.gateway.ratelimit import RateLimiter
from services.kit.auth import Authenticator, JwksCache
from services.kit.auth.settings import build_authenticator
from services.kit.grpc.client import PeerClient
from services.kit.grpc.peers import breaker_for, grpc_service_name, peer_client
from services.kit.grpc.probe import peer_health
from services.kit.lifecycle import close_all
from services.kit.probes import ReadinessCheck
from services.kit.redis_client import async_redis
from services.search.factory import build_search_provider
from services.search.provider import SearchProvider

log = logging.getLogger("venta.gateway")


def _images(settings: GatewaySettings) -> ImageStore:
    if settings.cloudinary_url is not None:
        return CloudinaryImageStore(
            settings.cloudinary_url.get_secret_value(),
            folder=settings.cloudinary_folder,
            timeout_s=settings.cloudinary_timeout_s,
            breaker=breaker_for(settings, "cloudinary"),
            upload_prefix=settings.cloudinary_upload_prefix,
        )
    return LocalImageStore(settings.upload_dir, public_url=settings.public_url)


def _search(settings: GatewaySettings) -> SearchProvider:
    """The search provider; the self-hosted one reads `VENTA_SEARCH_DATABASE_URL`, else the gateway's database
    settings (`venta_search` on VENTA_DB_HOST), as search sync, which writes the index, does."""
    return build_search_provider(settings, default_dsn=settings.dsn)


@dataclass
class Resources:
    settings: GatewaySettings
    redis: redis.asyncio.Redis
    http: httpx.AsyncClient
    users: PeerClient[user_pb2_grpc.UserServiceAsyncStub]
    vendors: PeerClient[vendor_pb2_grpc.VendorServiceAsyncStub]
    location: PeerClient[location_pb2_grpc.LocationServiceAsyncStub]
    jwks: JwksCache
    authenticator: Authenticator
    vendor_cache: VendorCache
    rate_limiter: RateLimiter
    images: ImageStore
    clerk_webhook: Webhook | None
    search: SearchProvider
    notifications: httpx.AsyncClient
    notifications_breaker: pybreaker.CircuitBreaker
    invalidator: CacheInvalidator | None = None
    extra_checks: dict[str, ReadinessCheck] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: GatewaySettings) -> Resources:
        cache = async_redis(settings.redis_dsn, timeout_s=settings.redis_timeout_s)
        http = httpx.AsyncClient(timeout=httpx.Timeout(5.0), follow_redirects=False)
        users = peer_client(settings, "users", settings.users_addr, user_pb2_grpc.UserServiceStub)
        authenticator, jwks = build_authenticator(settings, http=http, users=users, cache=cache)
        secret = settings.clerk_webhook_secret
        vendor_cache = VendorCache(cache, ttl_s=settings.vendor_cache_ttl_s)
        invalidate = settings.cache_invalidation_events and vendor_cache.enabled
        return cls(
            settings=settings,
            redis=cache,
            http=http,
            users=users,
            vendors=peer_client(settings, "vendors", settings.vendors_addr, vendor_pb2_grpc.VendorServiceStub),
            location=peer_client(settings, "location", settings.location_addr, location_pb2_grpc.LocationServiceStub),
            jwks=jwks,
            authenticator=authenticator,
            vendor_cache=vendor_cache,
            rate_limiter=RateLimiter(
                storage_uri=settings.redis_dsn,
                default=settings.rate_limit,
                routes=settings.rate_limit_routes,
                strategy=settings.rate_limit_strategy,
                timeout_s=settings.redis_timeout_s,
            ),
            images=_images(settings),
            clerk_webhook=Webhook(secret.get_secret_value()) if secret else None,
            invalidator=CacheInvalidator(settings, vendor_cache) if invalidate else None,
            search=_search(settings),
            notifications=httpx.AsyncClient(
                base_url=settings.notifications_url,
                timeout=httpx.Timeout(settings.notifications_timeout_s),
                follow_redirects=False,
            ),
            notifications_breaker=breaker_for(settings, "notifications"),
        )

    def start(self) -> None:
        """Background work that must not hold up start-up (the event consumer connects on its own)."""
        if self.invalidator is not None:
            self.invalidator.start()

    def checks(self) -> dict[str, ReadinessCheck]:
        async def redis_ping() -> None:
            await self.redis.ping()

        return {
            "redis": redis_ping,
            "identity": self.jwks.ensure_loaded,
            "users": peer_health(self.users, grpc_service_name(user_pb2, "UserService")),
            "vendors": peer_health(self.vendors, grpc_service_name(vendor_pb2, "VendorService")),
            "location": peer_health(self.location, grpc_service_name(location_pb2, "LocationService")),
            "search": self.search.ping,
            **self.extra_checks,
        }

    async def close(self) -> None:
        """Close everything, each independently: one failing close must not leave the others open."""
        closers = [
            self.users.close,
            self.vendors.close,
            self.location.close,
            self.http.aclose,
            self.notifications.aclose,
            self.redis.aclose,
            self.search.close,
            self.rate_limiter.close,
        ]
        if self.invalidator is not None:
            closers.insert(0, self.invalidator.stop)
        await close_all(closers, owner="gateway")
