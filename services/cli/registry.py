"""Which services exist, how each is configured, built and migrated: the one list the CLI and `venta up` read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic_settings import BaseSettings

from services.gateway import main as gateway_app
from services.gateway.config import GatewaySettings
from services.identity import app as identity_app
from services.identity.config import IdentitySettings
from services.location import app as location_app
from services.location.config import LocationSettings
from services.search_sync import app as search_sync_app
from services.search_sync.config import SearchSyncSettings
from services.users import app as users_app
from services.users.config import UserSettings
from services.vendors import app as vendors_app
from services.vendors.config import VendorSettings


@dataclass(frozen=True)
class ServiceEntry:
    name: str
    settings: type[BaseSettings]
    build: Callable[[Any], Any]
    migrations: Path | None = None
    kind: Literal["grpc", "http"] = "grpc"
    """grpc: a gRPC port plus an HTTP side port for probes; http: one HTTP port serving the API and the probes."""

    def default(self, field: str) -> Any:
        return self.settings.model_fields[field].default

    @property
    def http_port(self) -> int:
        return int(self.default("http_port"))

    @property
    def grpc_port(self) -> int | None:
        return int(self.default("grpc_port")) if self.kind == "grpc" else None

    @property
    def database(self) -> str | None:
        """The service's database: the one its migrations manage, or one it manages itself (the search index)."""
        return self.default("db_name") if "db_name" in self.settings.model_fields else None


SERVICES: dict[str, ServiceEntry] = {
    entry.name: entry
    for entry in (
        ServiceEntry("vendors", VendorSettings, vendors_app.build, vendors_app.MIGRATIONS),
        ServiceEntry("location", LocationSettings, location_app.build, location_app.MIGRATIONS),
        ServiceEntry("users", UserSettings, users_app.build, users_app.MIGRATIONS),
        ServiceEntry("identity", IdentitySettings, identity_app.build, kind="http"),
        ServiceEntry("gateway", GatewaySettings, gateway_app.build, kind="http"),
        ServiceEntry("search-sync", SearchSyncSettings, search_sync_app.build, kind="http"),
    )
}
