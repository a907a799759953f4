"""Which services exist, how each is configured, built and migrated: the one list the CLI and `venta up` read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings

from services.location import app as location_app
from services.location.config import LocationSettings
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

    def default(self, field: str) -> Any:
        return self.settings.model_fields[field].default

    @property
    def http_port(self) -> int:
        return int(self.default("http_port"))

    @property
    def grpc_port(self) -> int | None:
        return int(self.default("grpc_port")) if "grpc_port" in self.settings.model_fields else None

    @property
    def database(self) -> str | None:
        return self.default("db_name") if self.migrations else None


SERVICES: dict[str, ServiceEntry] = {
    entry.name: entry
    for entry in (
        ServiceEntry("vendors", VendorSettings, vendors_app.build, vendors_app.MIGRATIONS),
        ServiceEntry("location", LocationSettings, location_app.build, location_app.MIGRATIONS),
        ServiceEntry("users", UserSettings, users_app.build, users_app.MIGRATIONS),
    )
}
