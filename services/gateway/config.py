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
from services.kit.config import DatabaseSettings, GrpcSettings, KitSettings, Port, load_settings
from services.kit.events.settings import EventSettings
from services.kit.redis_client import RedisSettings
from services.search.settings import SearchSettings

MiB = 1024 * 1024


class GatewaySettings(
    KitSettings, DatabaseSettings, GrpcSettings, EventSettings, SearchSettings, AuthSettings, RedisSettings
):
    model_config = SettingsConfigDict(env_prefix="VENTA_", extra="ignore", frozen=True)

    service_name: str = "gateway"
    # The self-hosted search index (written by search sync) is the gateway's only database: VENTA_DB_HOST/PORT/
    # USER/PASSWORD, as the operator gives them, or VENTA_SEARCH_DATABASE_URL, as `venta up` does.
    db_name: str | None = "venta_search"
    http_port: Port = 5002
    public_url: str = "http://127.0.0.1:5002"
    forwarded_allow_ips: str | None = None
    users_addr: str = "127.0.0.1:5000"
    vendors_addr: str = "127.0.0.1:5005"
    location_addr: str = "127.0.0.1:5001"
    breaker_redis: bool = False

    # identity: `AuthSettings` (the kit's one verification path, shared with the Socket.IO gateway)

    # resilience
    rate_limit: str = "100/60 seconds"
    rate_limit_routes: dict[str, str] = {"/v1/uploads/image": "20/60 seconds", "/upload/image": "20/60 seconds"}
    rate_limit_strategy: Literal["fixed-window", "moving-window", "sliding-window-counter"] = "fixed-window"
    vendor_cache_ttl_s: int = Field(default=300, ge=0)
    cache_invalidation_events: bool = True
    max_body_bytes: int = Field(default=1 * MiB, ge=1024)
    cors_origins: Annotated[list[str], NoDecode] = []

    # webhooks
    clerk_webhook_secret: SecretStr | None = None
    revenuecat_webhook_secret: SecretStr | None = None

    # uploads
    upload_max_bytes: int = Field(default=5 * MiB, ge=1024, le=100 * MiB)
    upload_dir: Path = Path(".venta/uploads")
    cloudinary_url: SecretStr | None = None
    cloudinary_upload_prefix: str | None = None
    cloudinary_folder: str = "venta"
    cloudinary_timeout_s: float = Field(default=20.0, gt=0, le=300)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return comma_list(value)


@lru_cache
def get_settings() -> GatewaySettings:
    """The process's settings, built on first use; tests pass their own to `create_app` instead."""
    return load_settings(GatewaySettings)
