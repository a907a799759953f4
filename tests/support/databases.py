"""A service's own database read directly, outside the service under test (to check what it really wrote)."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.kit.grpc.server import GrpcServiceHost


async def connect_to_database_of(host: GrpcServiceHost) -> asyncpg.Connection:
    """A direct connection to the service's own database."""
    return await asyncpg.connect(host.database_url)


async def scalar(host: GrpcServiceHost, sql: str, *args: Any) -> Any:
    """One value from the service's own database."""
    conn = await connect_to_database_of(host)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def row_count(host: GrpcServiceHost, table: str) -> int:
    """Rows in `table` of the service's own database."""
    return int(await scalar(host, f'SELECT count(*) FROM "{table}"'))
