"""The self-hosted search provider: PostgreSQL with pg_trgm and fuzzystrmatch, the local default (no account needed).

Writes lock the affected object ids (advisory locks, in id order), read the stored documents, `merge` the changes
and upsert the result in one transaction, so two writers cannot interleave a read and a write. A rebuild fills a
fresh table, tidies its indexes and statistics, and swaps it in one transaction (drop + rename), carrying over
tombstones; searches running during the swap wait a moment and then read the new table. `open` creates what is
missing (the table is the provider's own derived structure, not a system of record, so it has no Alembic migration)
and fills the `words` column of rows written before it existed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg

from services.kit.db.migrations import ensure_database
from services.search import postgres_sql as sql
from services.search.provider import SearchPage, SearchQuery, SearchUnavailable
from services.search.records import Change, Document, Upsert, merge, merge_all, public

REBUILD_CHUNK = 1000
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InsufficientPrivilegeError,
)


class PostgresSearch:
    name = "postgres"

    def __init__(self, dsn: str, *, index: str = "vendor", timeout_s: float = 5.0) -> None:
        self.dsn = dsn.replace("postgresql+asyncpg://", "postgresql://", 1)
        self.index = index
        self.table = f"search_{index}"
        self.timeout_s = timeout_s
        self._pool: asyncpg.Pool | None = None

    async def _connect(self) -> asyncpg.Pool:
        if self._pool is None:
            try:
                await ensure_database(self.dsn)
                self._pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=1,
                    max_size=5,
                    timeout=self.timeout_s,
                    command_timeout=self.timeout_s,
                    server_settings={"application_name": "venta-search"},
                )
            except _UNAVAILABLE as exc:
                raise SearchUnavailable(f"search database unavailable: {type(exc).__name__}") from exc
        return self._pool

    async def _run(self, work: Any) -> Any:
        """Run `work(connection)` in a transaction; connection-level failures become SearchUnavailable."""
        pool = await self._connect()
        try:
            async with pool.acquire(timeout=self.timeout_s) as conn, conn.transaction():
                return await work(conn)
        except _UNAVAILABLE as exc:
            raise SearchUnavailable(f"search database unavailable: {type(exc).__name__}: {exc}") from exc

    async def open(self) -> None:
        async def create(conn: asyncpg.Connection) -> None:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('venta-search-ddl'))")
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            await conn.execute("CREATE EXTENSION IF NOT EXISTS fuzzystrmatch")
            for statement in sql.ddl(self.table):
                await conn.execute(statement)

        await self._run(create)

        async def fill_words(conn: asyncpg.Connection) -> int:
            rows = await conn.fetch(sql.missing_words(self.table), REBUILD_CHUNK)
            fill = [(r["object_id"], sql.words_column(json.loads(r["doc"])), r["doc"]) for r in rows]
            await conn.executemany(sql.set_words(self.table), fill)
            return len(rows)

        # rows written before the `words` column existed (or by an older version during an upgrade), in chunks
        while await self._run(fill_words) == REBUILD_CHUNK:
            pass

    async def apply(self, changes: Sequence[Change]) -> int:
        if not changes:
            return 0
        ids = sorted({change.object_id for change in changes})

        async def write(conn: asyncpg.Connection) -> int:
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(id, 7)) FROM unnest($1::text[]) AS id", ids
            )
            rows = await conn.fetch(f"SELECT object_id, doc FROM {self.table} WHERE object_id = ANY($1::text[])", ids)
            current: dict[str, Document | None] = {r["object_id"]: json.loads(r["doc"]) for r in rows}
            written = merge_all(current, list(changes))
            if written:
                await conn.executemany(sql.upsert(self.table), [sql.row(doc) for doc in written.values()])
            return len(written)

        return int(await self._run(write))

    async def search(self, query: SearchQuery) -> SearchPage:
        if query.matches_nothing:
            return SearchPage(page=query.page, hits_per_page=query.hits_per_page)
        statement, params = sql.search(self.table, query)

        async def read(conn: asyncpg.Connection) -> list[Any]:
            return list(await conn.fetch(statement, *params))

        rows = await self._run(read)
        total = int(rows[0]["total"]) if rows else 0
        if not rows and query.page > 0:
            total = await self._count(query)
        return SearchPage(
            hits=[public(json.loads(r["doc"])) for r in rows],
            total=total,
            page=query.page,
            pages=-(-total // query.hits_per_page),
            hits_per_page=query.hits_per_page,
        )

    async def _count(self, query: SearchQuery) -> int:
        statement, params = sql.search(self.table, SearchQuery(**{**query.__dict__, "page": 0, "hits_per_page": 1}))

        async def read(conn: asyncpg.Connection) -> int:
            row = await conn.fetchrow(statement, *params)
            return int(row["total"]) if row else 0

        return int(await self._run(read))

    async def documents(self, *, include_deleted: bool = False) -> dict[str, Document]:
        condition = "" if include_deleted else " WHERE NOT deleted"

        async def read(conn: asyncpg.Connection) -> list[Any]:
            return list(await conn.fetch(f"SELECT object_id, doc FROM {self.table}{condition}"))

        return {r["object_id"]: json.loads(r["doc"]) for r in await self._run(read)}

    async def rebuild(self, records: AsyncIterator[Upsert]) -> int:
        build = f"{self.table}__build"

        async def prepare(conn: asyncpg.Connection) -> None:
            await conn.execute(f"DROP TABLE IF EXISTS {build}")
            for statement in sql.ddl(build):
                await conn.execute(statement)

        await self.open()
        await self._run(prepare)
        count = 0
        chunk: list[Document] = []

        async def flush(conn: asyncpg.Connection) -> None:
            await conn.executemany(sql.upsert(build), [sql.row(doc) for doc in chunk])

        async for record in records:
            document = merge(None, record)
            assert document is not None
            chunk.append(document)
            count += 1
            if len(chunk) >= REBUILD_CHUNK:
                await self._run(flush)
                chunk = []
        if chunk:
            await self._run(flush)

        async def tidy(conn: asyncpg.Connection) -> None:
            for statement in sql.after_bulk_load(build):
                await conn.execute(statement)

        await self._run(tidy)

        async def swap(conn: asyncpg.Connection) -> None:
            await conn.execute(sql.carry_tombstones(self.table, build))
            await conn.execute(f"DROP TABLE {self.table}")
            for statement in sql.rename_statements(build, self.table):
                await conn.execute(statement)

        await self._run(swap)
        return count

    async def ping(self) -> None:
        async def one(conn: asyncpg.Connection) -> None:
            await conn.fetchval("SELECT 1")

        await self._run(one)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
