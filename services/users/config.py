"""Settings of the user service; it calls the vendor service for GetUserVendors."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from services.kit.config import DatabaseSettings, GrpcSettings, KitSettings, Port, peer_address
from services.kit.events.settings import EventSettings


class UserSettings(KitSettings, DatabaseSettings, GrpcSettings, EventSettings):
    model_config = SettingsConfigDict(env_prefix="VENTA_", extra="ignore", frozen=True)

    service_name: str = "users"
    grpc_port: Port = 5000
    http_port: Port = 9000
    db_name: str | None = "venta_users"
    vendors_addr: str = peer_address("vendors", 5005)
