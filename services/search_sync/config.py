"""Settings of search sync: its HTTP port, the event bus, and the search provider (PostgreSQL `venta_search` by
default: the service's database settings are the self-hosted index's database)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.kit.config import DatabaseSettings, KitSettings, Port
from services.kit.events.settings import EventSettings
from services.search.settings import SearchSettings


class SearchSyncSettings(KitSettings, DatabaseSettings, EventSettings, SearchSettings):
    model_config = SettingsConfigDict(env_prefix="VENTA_", extra="ignore", frozen=True)

    service_name: str = "search-sync"
    http_port: Port = 5006
    db_name: str | None = "venta_search"
    consumer_name: str = Field(
        default="search-sync",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="The durable JetStream consumer's name; a new name is a new consumer, which reads every event the "
        "stream still holds, so change it only for that.",
    )
    start_retry_max_s: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="Longest delay, in seconds, between attempts to reach NATS and the search provider at start "
        "(not ready until both answer).",
    )
