"""The self-hosted provider's own promises, beyond the contract both providers keep: a typo query is answered from
the trigram index on a realistic number of vendors, and a table made before typo matching is brought up to date by
`open`."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator

import asyncpg

from services.devkit.servers import Postgres
from services.search import postgres_sql as sql
from services.search.provider import SearchQuery
from services.search.records import Upsert
from tests.support.search_providers import postgres_search

SYLLABLES = ["ba", "ca", "chi", "de", "fo", "gu", "ji", "lu", "me", "no", "pi", "que", "ri", "so", "ti", "vi", "yo"]


def record(name: str, description: str, rnd: random.Random) -> Upsert:
    stamp = "2025-01-01T00:00:00Z"
    document = {"objectID": str(uuid.UUID(int=rnd.getrandbits(128))), "name": name, "description": description}
    return Upsert(record={**document, "open": True, "createdAt": stamp, "updatedAt": stamp}, version=1)


async def vendors(count: int) -> AsyncIterator[Upsert]:
    """`count` vendors with names and descriptions of made-up words (a word is rare, as in real names)."""
    rnd = random.Random(14)

    def word() -> str:
        return "".join(rnd.choices(SYLLABLES, k=rnd.randint(2, 4)))

    yield record("Tacos El Rey", "al pastor", rnd)
    for _ in range(count - 1):
        yield record(f"{word().title()} {word().title()}", " ".join(word() for _ in range(rnd.randint(2, 8))), rnd)


async def test_typo_queries_on_20000_vendors_use_the_trigram_index(postgres: Postgres) -> None:
    provider = postgres_search(postgres)
    await provider.open()
    try:
        assert await provider.rebuild(vendors(20_000)) == 20_000  # the bulk path
        conn = await asyncpg.connect(provider.dsn)
        try:
            # a GIN index's pending entries make the planner prefer a scan: the rebuild leaves none
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
            for index in ("trgm", "words"):
                gin = await conn.fetchrow("SELECT * FROM pgstatginindex($1::regclass)", f"{provider.table}_{index}")
                assert gin is not None and gin["pending_pages"] == 0, dict(gin or {})
            await conn.execute(f"ANALYZE {provider.table}")
            for text in ("tcaos", "tcaos rey", "pastro"):
                statement, params = sql.search(provider.table, SearchQuery(text=text))
                plan = "\n".join(row[0] for row in await conn.fetch(f"EXPLAIN {statement}", *params))
                assert f"Bitmap Index Scan on {provider.table}_words" in plan, plan
                assert "Seq Scan" not in plan, plan
        finally:
            await conn.close()
        page = await provider.search(SearchQuery(text="tcaos rey"))
        assert "Tacos El Rey" in [hit["name"] for hit in page.hits]
    finally:
        await provider.close()


async def test_open_adds_typo_matching_to_a_table_made_before_it(postgres: Postgres) -> None:
    provider = postgres_search(postgres)
    document = {"objectID": str(uuid.uuid4()), "name": "Tacos El Rey", "description": "al pastor", "open": False}
    await provider.open()  # creates the database; then the table is replaced by the layout of the previous version
    conn = await asyncpg.connect(provider.dsn)
    try:
        await conn.execute(f"DROP TABLE {provider.table}")
        await conn.execute(
            f"""CREATE TABLE {provider.table} (object_id text NOT NULL, doc jsonb NOT NULL,
                deleted boolean NOT NULL DEFAULT false, name text, search_text text, open boolean,
                lat double precision, lng double precision, CONSTRAINT {provider.table}_pkey PRIMARY KEY (object_id));
            CREATE INDEX {provider.table}_trgm ON {provider.table} USING gin (search_text gin_trgm_ops);
            CREATE INDEX {provider.table}_lat ON {provider.table} (lat) WHERE NOT deleted"""
        )
        await conn.execute(
            f"INSERT INTO {provider.table} (object_id, doc, deleted, name, search_text, open)"
            " VALUES ($1, $2::jsonb, false, $3, $4, false)",
            document["objectID"],
            json.dumps(document),
            document["name"],
            "Tacos El Rey al pastor",
        )
        await provider.close()
        await provider.open()
        assert [hit["name"] for hit in (await provider.search(SearchQuery(text="tcaos"))).hits] == ["Tacos El Rey"]
        indexes = {
            r["indexname"]
            for r in await conn.fetch("SELECT indexname FROM pg_indexes WHERE tablename = $1", provider.table)
        }
        assert f"{provider.table}_words" in indexes
        assert await conn.fetchval(f"SELECT words FROM {provider.table}") == " tacos el rey al pastor "
    finally:
        await conn.close()
        await provider.close()
