"""One `Database` per service process: an async engine, a session factory and a readiness ping.

Connects and statements have timeouts, so a dead server turns into a fast UNAVAILABLE (see `services.kit.errors`)
rather than a hung call. There is no pre-ping (it would cost a round trip on every call): when a call meets a dead
connection, SQLAlchemy invalidates the whole pool, so after PostgreSQL restarts at most the first call fails, and the
readiness check usually absorbs even that. Reads go through `read()`, in autocommit mode: one round trip, no
BEGIN/COMMIT. Statements are traced by the asyncpg instrumentation (`services.kit.telemetry.instrument_process`),
which sees what SQLAlchemy sends through asyncpg; SQLAlchemy's own instrumentation is left off, as it would only
add a second span around each of those.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from services.kit.config import DatabaseSettings


class Database:
    def __init__(self, settings: DatabaseSettings, *, application_name: str) -> None:
        self.engine = create_async_engine(
            settings.dsn,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_pool_size,
            pool_timeout=settings.db_connect_timeout_s,
            connect_args={
                "timeout": settings.db_connect_timeout_s,
                "command_timeout": settings.db_statement_timeout_s,
                "server_settings": {"application_name": application_name},
            },
        )
        self._sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._readers = async_sessionmaker(self._autocommit, class_=AsyncSession, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: committed when the block ends normally, rolled back when it raises."""
        async with self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """Single-statement reads: autocommit, so no BEGIN/COMMIT round trips. Never write through it."""
        async with self._readers() as session:
            yield session

    @property
    def url(self) -> str:
        """The libpq URL of the database (with its password), for tools and direct connections outside the ORM."""
        return self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    @asynccontextmanager
    async def read_rows(self) -> AsyncIterator[AsyncConnection]:
        """SQLAlchemy Core reads on an autocommit connection: no ORM session, identity map or object loading.

        For the hottest single-row reads, where the ORM's per-call work costs more than the query (a profile of
        GetVendorById under load charged a third of the service's time to it); rows come back as `Row`s.
        """
        async with self._autocommit.connect() as connection:
            yield connection

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()
