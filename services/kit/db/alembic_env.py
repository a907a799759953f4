"""The body of every service's Alembic `env.py` (each one is two lines that call `run()`).

Online mode only: migrations always run against a live database, with the URL handed over by
`services.kit.db.migrations` through `config.attributes["dsn"]`.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def _migrate(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(dsn: str) -> None:
    engine = create_async_engine(dsn, poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_migrate)
    await engine.dispose()


def run() -> None:
    dsn = context.config.attributes.get("dsn") or context.config.get_main_option("sqlalchemy.url")
    if not dsn:
        raise RuntimeError("no database URL given to Alembic")
    asyncio.run(_run_async(dsn))
