"""Apply a service's Alembic migrations, creating its database first when the server lacks it.

Migrations run by command (`venta migrate`) or by the operator's Job, never implicitly at service start-up.
Alembic's env (see `alembic_env`) is async and calls `asyncio.run`, so `upgrade` runs it in a worker thread when
called from inside an event loop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url


def alembic_config(script_location: Path, dsn: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["dsn"] = dsn
    return config


async def ensure_database(dsn: str) -> bool:
    """Create the database named in `dsn` if it does not exist; True when it was created."""
    url = make_url(dsn)
    name = url.database
    if not name:
        raise ValueError("the database URL names no database")
    conn = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password, database="postgres", timeout=5
    )
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        await conn.execute(f'CREATE DATABASE "{name.replace(chr(34), "")}"')
        return True
    finally:
        await conn.close()


async def upgrade(script_location: Path, dsn: str, revision: str = "head") -> None:
    await ensure_database(dsn)
    await asyncio.to_thread(command.upgrade, alembic_config(script_location, dsn), revision)


async def downgrade(script_location: Path, dsn: str, revision: str = "base") -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(script_location, dsn), revision)
