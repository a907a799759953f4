"""Settings of the HTTP gateway, read from `VENTA_*` variables by a cached `get_settings()` (never at import time).

Defaults are those of local mode (`venta up`): the local identity provider on :5010 as issuer, local disk for
uploads, no webhook secrets (webhooks are then refused, never accepted unsigned).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.kit.auth.settings import AuthSettings, comma_list
from services.kit.config import DatabaseSettings, GrpcSettings, KitSettings, Port, load_settings, peer_address
from services.kit.events.settings import EventSettings
from services.kit.redis_client import RedisSettings
from services.search.settings import SearchSettings

MiB = 1024 * 1024


class GatewaySettings(
    KitSettings, DatabaseSettings, GrpcSettings, EventSettings, SearchSettings, AuthSettings, RedisSettings
):
    model_config = SettingsConfigDict(env_prefix="VENTA_", extra="ignore", frozen=True)

    service_name: str = "gateway"
    db_name: str | None = Field(
        default="venta_search",
        description="The self-hosted search index's database (written by search sync), the gateway's only one: with "
        "`VENTA_DB_HOST`/`PORT`/`USER`/`PASSWORD` as the operator gives them, unless `VENTA_SEARCH_DATABASE_URL` is "
        "set (as `venta up` does).",
    )
    http_port: Port = 5002
    public_url: str = Field(
        default="http://127.0.0.1:5002",
        description="The gateway's public base URL, under which images kept in `VENTA_UPLOAD_DIR` are served back; in "
        "a cluster `spec.uploads.publicBaseUrl`.",
    )
    forwarded_allow_ips: str | None = Field(
        default=None,
        description="Proxies (IPs or CIDRs, comma-separated) trusted for `X-Forwarded-For`, so rate limits count the "
        "real client; in a cluster `spec.network.trustedProxies`.",
    )
    users_addr: str = peer_address("users", 5000)
    vendors_addr: str = peer_address("vendors", 5005)
    location_addr: str = peer_address("location", 5001)
    notifications_url: str = Field(
        default="http://127.0.0.1:5007",
        pattern=r"^https?://[^/?#]+$",
        description="The notifications service's base URL, where `/v1/users/me/favourites*` and `/v1/notifications*` "
        "are forwarded (in a cluster `http://<platform>-notifications.<namespace>.svc:5007`).",
    )
    notifications_timeout_s: float = Field(
        default=5.0, gt=0, le=60, description="Seconds a forwarded call to the notifications service may take."
    )
    breaker_redis: bool = Field(
        default=False,
        description="`true` shares the breakers' state between replicas in Redis (pybreaker's CircuitRedisStorage), "
        "at the cost of a synchronous Redis read per call.",
    )

    # identity: `AuthSettings` (the kit's one verification path, shared with the Socket.IO gateway)

    # resilience
    rate_limit: str = Field(
        default="100/60 seconds",
        description="Requests allowed per client address and route template, counted in Redis across replicas; in a "
        "cluster `spec.resilience.rateLimit`.",
    )
    rate_limit_routes: dict[str, str] = Field(
        default={"/v1/uploads/image": "20/60 seconds", "/upload/image": "20/60 seconds"},
        description="Limits of particular routes (a JSON object: route template -> limit), overriding "
        "`VENTA_RATE_LIMIT`.",
    )
    rate_limit_strategy: Literal["fixed-window", "moving-window", "sliding-window-counter"] = Field(
        default="fixed-window", description="How the `limits` library counts requests against the rate limits."
    )
    vendor_cache_ttl_s: int = Field(
        default=300,
        ge=0,
        description="Seconds a `GET /v1/vendors/{id}` answer is kept in Redis; 0 disables the cache.",
    )
    cache_invalidation_events: bool = Field(
        default=True,
        description="`true` runs a durable consumer (`gateway-vendor-cache`, `vendor.>`) that drops a cached vendor on "
        "each of its events, so changes made elsewhere reach the cache.",
    )
    max_body_bytes: int = Field(
        default=1 * MiB,
        ge=1024,
        description="Largest JSON request body, in bytes, checked before parsing (larger is a 413).",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="Browser origins CORS allows (comma-separated); none by default, as the mobile app is no browser.",
    )

    # webhooks
    clerk_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Clerk's webhook signing secret (`whsec_…`); unset, Clerk's webhooks are refused (401).",
    )
    revenuecat_webhook_secret: SecretStr | None = Field(
        default=None,
        description="The shared secret RevenueCat sends as `Authorization`; unset, its webhooks are refused (401).",
    )

    # uploads
    upload_max_bytes: int = Field(
        default=5 * MiB,
        ge=1024,
        le=100 * MiB,
        description="Largest image upload, in bytes (larger is a 413, refused before the multipart parser reads it).",
    )
    upload_dir: Path = Field(
        default=Path(".venta/uploads"),
        description="Where uploaded images are kept when `VENTA_CLOUDINARY_URL` is unset.",
    )
    cloudinary_url: SecretStr | None = Field(
        default=None,
        description="`cloudinary://<api_key>:<api_secret>@<cloud_name>`: images go to Cloudinary instead of "
        "`VENTA_UPLOAD_DIR`; in a cluster it comes from a Secret.",
    )
    cloudinary_upload_prefix: str | None = Field(
        default=None, description="Another host for the Cloudinary SDK to talk to (the tests' HTTP stand-in)."
    )
    cloudinary_folder: str = Field(default="venta", description="The Cloudinary folder uploaded images go to.")
    cloudinary_timeout_s: float = Field(
        default=20.0,
        gt=0,
        le=300,
        description="Seconds one Cloudinary upload may take (it also has a breaker of its own).",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return comma_list(value)


@lru_cache
def get_settings() -> GatewaySettings:
    """The process's settings, built on first use; tests pass their own to `create_app` instead."""
    return load_settings(GatewaySettings)
