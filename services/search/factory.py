"""Builds the configured search provider; the one place that knows every provider."""

from __future__ import annotations

from services.search.algolia import AlgoliaSearch
from services.search.postgres import PostgresSearch
from services.search.provider import SearchProvider
from services.search.settings import SearchSettings


def build_search_provider(settings: SearchSettings, *, default_dsn: str | None = None) -> SearchProvider:
    """The provider of `settings`; the self-hosted one uses `search_database_url`, else `default_dsn`."""
    if settings.search_provider == "algolia":
        assert settings.algolia_app_id and settings.algolia_api_key  # checked by SearchSettings
        return AlgoliaSearch(
            app_id=settings.algolia_app_id,
            api_key=settings.algolia_api_key.get_secret_value(),
            index=settings.search_index,
            hosts=settings.algolia_hosts,
            timeout_s=settings.search_timeout_s,
        )
    dsn = settings.search_database_url or default_dsn
    if not dsn:
        raise ValueError("the postgres search provider needs VENTA_SEARCH_DATABASE_URL (or a service database)")
    return PostgresSearch(dsn, index=settings.search_index, timeout_s=settings.search_timeout_s)
