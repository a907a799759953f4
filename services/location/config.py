"""Settings of the location service."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.kit.config import DatabaseSettings, GrpcSettings, KitSettings, Port


class LocationSettings(KitSettings, DatabaseSettings, GrpcSettings):
    model_config = SettingsConfigDict(env_prefix="VENTA_", extra="ignore", frozen=True)

    service_name: str = "location"
    grpc_port: Port = 5001
    http_port: Port = 9001
    db_name: str | None = "venta_location"
    max_results: int = Field(
        default=2000,
        ge=1,
        le=100_000,
        description="Cap on the vendors returned for one viewport; a crowded viewport gets this many, not all.",
    )
