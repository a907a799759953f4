"""Search settings (`VENTA_SEARCH_*`, `VENTA_ALGOLIA_*`), shared by search sync, `venta reindex` and the gateway."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.kit.config import ENV_PREFIX


class SearchSettings(BaseSettings):
    """Which search provider holds the vendor index, and how to reach it."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    search_provider: Literal["postgres", "algolia"] = Field(
        default="postgres",
        description="`postgres`: the self-hosted index (local default); `algolia`: Algolia (needs the two "
        "`VENTA_ALGOLIA_*` credentials).",
    )
    search_index: str = Field(
        default="vendor",
        pattern=r"^[a-z][a-z0-9_]{0,40}$",
        description="The index's name: table `search_<index>` with PostgreSQL, the index itself with Algolia.",
    )
    search_timeout_s: float = Field(
        default=5.0, gt=0, le=120, description="Seconds one call to the search provider may take."
    )
    # self-hosted provider: a PostgreSQL database of its own (defaults to the service's database settings)
    search_database_url: str | None = Field(
        default=None,
        description="The self-hosted index's `postgresql://` URL; unset, the process's own `VENTA_DB_*` settings "
        "(database `venta_search`).",
    )
    # Algolia: credentials come from a Secret; hosts only to point the client elsewhere (a proxy, a test stand-in)
    algolia_app_id: str | None = Field(default=None, description="The Algolia application id.")
    algolia_api_key: SecretStr | None = Field(
        default=None, description="The Algolia API key (write access); in a cluster it comes from a Secret."
    )
    algolia_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts (a JSON list) to send Algolia's requests to instead of Algolia's own: a proxy, or a test "
        "stand-in.",
    )

    @model_validator(mode="after")
    def _algolia_credentials(self) -> SearchSettings:
        if self.search_provider == "algolia" and not (self.algolia_app_id and self.algolia_api_key):
            raise ValueError("the algolia provider needs VENTA_ALGOLIA_APP_ID and VENTA_ALGOLIA_API_KEY")
        return self
