"""Positions in PostgreSQL, queried through a GiST index on `point(long, lat)`.

A viewport is a box in (long, lat) space; `point(long, lat) <@ box(...)` is answered by the index
(`ix_vendor_location_point`), never a table scan. A viewport that crosses the antimeridian (sw.long > ne.long) is
split into two boxes. Latitude is always latitude here (the original stored one as a sort score).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.location.models import TABLES


@dataclass(frozen=True)
class Position:
    entity_id: uuid.UUID
    lat: float
    long: float


async def upsert(session: AsyncSession, *, kind: str, entity_id: uuid.UUID, lat: float, long: float) -> datetime:
    now = datetime.now(UTC)
    table = TABLES[kind]
    statement = insert(table).values(entity_id=entity_id, lat=lat, long=long, updated_at=now)
    await session.exec(
        statement.on_conflict_do_update(
            index_elements=[table.c.entity_id],
            set_={"lat": statement.excluded.lat, "long": statement.excluded.long, "updated_at": now},
        )
    )
    return now


async def remove(session: AsyncSession, *, kind: str, entity_id: uuid.UUID) -> None:
    table = TABLES[kind]
    await session.exec(delete(table).where(table.c.entity_id == entity_id))


def _boxes(south: float, west: float, north: float, east: float) -> list[tuple[float, float, float, float]]:
    if west <= east:
        return [(west, south, east, north)]
    return [(west, south, 180.0, north), (-180.0, south, east, north)]


def box_query(x1: float, y1: float, x2: float, y2: float, limit: int) -> Any:
    table = TABLES["vendor"]
    inside = func.point(table.c.long, table.c.lat).op("<@")(func.box(func.point(x1, y1), func.point(x2, y2)))
    return select(table.c.entity_id, table.c.lat, table.c.long).where(inside).limit(limit)


async def vendors_in_box(
    session: AsyncSession, *, south: float, west: float, north: float, east: float, limit: int
) -> list[Position]:
    found: list[Position] = []
    for x1, y1, x2, y2 in _boxes(south, west, north, east):
        rows = await session.exec(box_query(x1, y1, x2, y2, limit - len(found)))
        found += [Position(entity_id=r.entity_id, lat=r.lat, long=r.long) for r in rows]
        if len(found) >= limit:
            break
    return found
