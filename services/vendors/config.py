"""Settings of the vendor service; defaults are the ports and database name of SPEC.md, plus the event bus."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from services.kit.config import DatabaseSettings, GrpcSettings, KitSettings, Port
from services.kit.events.settings import EventSettings


class VendorSettings(KitSettings, DatabaseSettings, GrpcSettings, EventSettings):
    model_config = SettingsConfigDict(env_prefix="VENTA_", extra="ignore", frozen=True)

    service_name: str = "vendors"
    grpc_port: Port = 5005
    http_port: Port = 9005
    db_name: str | None = "venta_vendors"
