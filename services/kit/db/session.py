"""One `Database` per service process: an async engine, a session factory and a readiness ping.

Connects and statements have timeouts, so a dead server turns into a fast UNAVAILABLE (see `services.kit.errors`)
rather than a hung call. There is no pre-ping (it would cost a round trip on every call): when a call meets a dead
connection, SQLAlchemy invalidates the whole pool, so after PostgreSQL restarts at most the first call fails, and the
readiness check usually absorbs even that. Reads go through `read()`, in autocommit mode: one round trip, no
BEGIN/COMMIT. Statements are traced by the asyncpg instrumentation (`services.kit.telemetry.instrument_process`),
which sees what SQLAlchemy sends through asyncpg, inside recorded calls only (`traced_if_recorded`): so call no peer
inside a `Database` block (in an unsampled call its client span, and the trace context it carries, would be left out
too). SQLAlchemy's own instrumentation is left off, as it would only add a second span around each statement.

The hottest calls skip SQLAlchemy altogether: `connection()` and `transaction()` lend a connection of an asyncpg
pool of the same size (opened on first use), whose statements asyncpg prepares once per connection: SQLAlchemy's
pool checkout, greenlet hops and result wrapping cost more CPU than asyncpg's own work for a one-row statement
(`bench/README.md` has what moving GetVendorById and UpdateVendor here gained). The ORM stays for everything else
(models, migrations, the less frequent calls).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from services.kit.config import DatabaseSettings
from services.kit.errors import Unavailable
from services.kit.telemetry import traced_if_recorded

log = logging.getLogger("venta.db")

# What asyncpg raises when the connection itself failed, not a statement: the server went away, or (a server killed
# mid-conversation) the connection's protocol was left in a state it cannot leave ("another operation is in
# progress"). Either way the call may succeed on a new connection: UNAVAILABLE, and the pool's connections renewed.
_CONNECTION_LOST = (
    OSError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.PostgresConnectionError,
)


class Record(asyncpg.Record):  # type: ignore[misc]  # asyncpg ships no type information
    """A row of the asyncpg pool whose columns read as attributes too (`row.name`), like SQLAlchemy's rows and the
    ORM's objects, so one function can turn any of them into a message."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


async def _keep_session(connection: asyncpg.Connection[Record]) -> None:
    """The pool's reset when a connection comes back: nothing to undo.

    asyncpg's default sends `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;` on every release,
    a round trip per call to undo session state that the pool's users never make: the hot statements set no
    parameters, take no advisory locks, LISTEN to nothing and open no cursor outside a transaction. An open
    transaction is still rolled back (asyncpg does that before calling this). Whoever needs session state takes a
    connection of their own, not one of this pool.
    """


class Database:
    def __init__(self, settings: DatabaseSettings, *, application_name: str) -> None:
        self._settings, self._application_name = settings, application_name
        self._pool: asyncpg.Pool[Record] | None = None
        self._pool_made = asyncio.Lock()
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
        with traced_if_recorded():
            async with self._sessions() as session, session.begin():
                yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """Single-statement reads: autocommit, so no BEGIN/COMMIT round trips. Never write through it."""
        with traced_if_recorded():
            async with self._readers() as session:
                yield session

    @property
    def url(self) -> str:
        """The libpq URL of the database (with its password), for tools and direct connections outside the ORM."""
        return self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    @asynccontextmanager
    async def read_rows(self) -> AsyncIterator[AsyncConnection]:
        """SQLAlchemy Core reads on an autocommit connection: no ORM session, identity map or object loading.

        For frequent reads where the ORM's per-call work costs more than the query (a profile of GetVendorById under
        load charged a third of the service's time to it); rows come back as `Row`s. The very hottest go further,
        to asyncpg (`connection()`).
        """
        with traced_if_recorded():
            async with self._autocommit.connect() as connection:
                yield connection

    async def _asyncpg_pool(self) -> asyncpg.Pool[Record]:
        if self._pool is None:
            async with self._pool_made:
                if self._pool is None:
                    settings = self._settings
                    self._pool = await asyncpg.create_pool(
                        self.url,
                        min_size=0,  # connections open on demand, as SQLAlchemy's do
                        max_size=settings.db_pool_size,
                        timeout=settings.db_connect_timeout_s,
                        command_timeout=settings.db_statement_timeout_s,
                        server_settings={"application_name": self._application_name},
                        record_class=Record,
                        reset=_keep_session,
                    )
        return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection[Record]]:
        """An asyncpg connection (autocommit) for the hottest single statements: rows come back as `Record`s.

        Leave no session state behind (no SET, LISTEN, advisory lock or cursor outside a transaction): the pool
        does not reset connections between calls (`_keep_session`).

        When PostgreSQL went away (a restart, a failover), every idle connection of the pool is dead too: the first
        call that meets one expires them all, so at most that call fails, as with the SQLAlchemy pool.
        """
        pool = await self._asyncpg_pool()
        try:
            with traced_if_recorded():
                async with pool.acquire(timeout=self._settings.db_connect_timeout_s) as connection:
                    yield connection
        except _CONNECTION_LOST as exc:
            log.warning(
                "PostgreSQL connection lost (%s: %s); the pool's connections are renewed", type(exc).__name__, exc
            )
            await pool.expire_connections()
            raise Unavailable("the database is unavailable, retry later") from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection[Record]]:
        """`connection()` inside a transaction: committed when the block ends normally, rolled back when it raises."""
        async with self.connection() as connection, connection.transaction():
            yield connection

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), self._settings.db_connect_timeout_s + 5)
            except TimeoutError:  # a connection never given back: close it anyway
                self._pool.terminate()
        await self.engine.dispose()
