"""The two search providers on real engines: PostgreSQL (a database of the test's own) or the Algolia stand-in."""

from __future__ import annotations

import uuid

from services.devkit.servers import Postgres
from services.search.algolia import AlgoliaSearch
from services.search.postgres import PostgresSearch
from tests.support.algolia_standin import AlgoliaStandIn


def postgres_search(postgres: Postgres, database: str | None = None) -> PostgresSearch:
    return PostgresSearch(postgres.url_for(database or f"search_{uuid.uuid4().hex[:10]}"), index="vendor")


def algolia_search(standin: AlgoliaStandIn) -> AlgoliaSearch:
    return AlgoliaSearch(
        app_id="VENTATEST", api_key="test-key", index="vendor", hosts=[f"http://127.0.0.1:{standin.port}"]
    )
