"""Which services exist, how each is configured, built and migrated: the one list the CLI and `venta up` read.

Only the settings classes are imported here (they are light). A service's code is imported when it is built
(`entry.build`), so `venta serve vendors` does not pay for importing the gateway, and the other way round.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from services.gateway.config import GatewaySettings
from services.identity.config import IdentitySettings
from services.kit.config import KitSettings
from services.location.config import LocationSettings
from services.notifications.config import NotificationSettings
from services.search_sync.config import SearchSyncSettings
from services.users.config import UserSettings
from services.vendors.config import VendorSettings
from services.websocket.config import WebsocketSettings


@dataclass(frozen=True)
class ServiceEntry:
    name: str
    settings: type[KitSettings]
    app_module: str
    """The module holding `build(settings)`, imported only when the service is built."""
    kind: Literal["grpc", "http"] = "grpc"
    """grpc: a gRPC port plus an HTTP side port for probes; http: one HTTP port serving the API and the probes."""

    @property
    def build(self) -> Callable[[Any], Any]:
        return cast(Callable[[Any], Any], importlib.import_module(self.app_module).build)

    @property
    def migrations(self) -> Path | None:
        """The service's Alembic folder (`migrations/` beside its app module), if it has one."""
        spec = importlib.util.find_spec(self.app_module.rpartition(".")[0])
        assert spec is not None and spec.submodule_search_locations
        folder = Path(next(iter(spec.submodule_search_locations))) / "migrations"
        return folder if (folder / "env.py").exists() else None

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
        ServiceEntry("vendors", VendorSettings, "services.vendors.app"),
        ServiceEntry("location", LocationSettings, "services.location.app"),
        ServiceEntry("users", UserSettings, "services.users.app"),
        ServiceEntry("identity", IdentitySettings, "services.identity.app", kind="http"),
        ServiceEntry("gateway", GatewaySettings, "services.gateway.app", kind="http"),
        ServiceEntry("search-sync", SearchSyncSettings, "services.search_sync.app", kind="http"),
        ServiceEntry("websocket", WebsocketSettings, "services.websocket.app", kind="http"),
        ServiceEntry("notifications", NotificationSettings, "services.notifications.app", kind="http"),
    )
}
