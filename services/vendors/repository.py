"""Vendor persistence: every rule about who may change what is enforced here, inside the transaction.

Every change also writes its event to the outbox in the same transaction, so the vendor table and the events
describing it cannot diverge (a crash after the commit loses nothing: the relay publishes what is pending).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.kit.db.session import Record
from services.kit.errors import NotFound, PermissionDenied
from services.kit.events.outbox import Outbox
from services.vendors import events
from services.vendors.models import NEXT_VERSION, Vendor, VendorCreate, utcnow


async def get_vendor(session: AsyncSession, *, vendor_id: uuid.UUID, for_update: bool = False) -> Vendor:
    query = select(Vendor).where(Vendor.id == vendor_id)
    if for_update:
        query = query.with_for_update()
    vendor = (await session.exec(query)).first()
    if vendor is None:
        raise NotFound(f"vendor {vendor_id} not found")
    return vendor


_VENDOR = Vendor.__table__  # type: ignore[attr-defined]
# The hot paths (GetVendorById, UpdateVendor, SetVendorOpen, SetVendorPosition) run on asyncpg directly
# (`Database.connection()`), each statement prepared once per connection.
# the columns named, not `*`: a column a later migration adds must not change the result of a statement a running
# replica has prepared (asyncpg would refuse the cached statement inside a transaction)
_COLUMNS = ", ".join(f'"{column.name}"' for column in _VENDOR.c)
_READ = f"SELECT {_COLUMNS} FROM {_VENDOR.name} WHERE id = $1"
_OWNER = f"SELECT owner_id FROM {_VENDOR.name} WHERE id = $1"
_CHANGEABLE = set(_VENDOR.c.keys()) - {"id", "owner_id", "created_at", "updated_at"}


async def read_vendor(connection: asyncpg.Connection[Record], *, vendor_id: uuid.UUID) -> Record:
    """The vendor as a row: the read path of GetVendorById, the service's hottest call."""
    row: Record | None = await connection.fetchrow(_READ, vendor_id)
    if row is None:
        raise NotFound(f"vendor {vendor_id} not found")
    return row


async def _owned(session: AsyncSession, *, vendor_id: uuid.UUID, caller_id: uuid.UUID) -> Vendor:
    vendor = await get_vendor(session, vendor_id=vendor_id, for_update=True)
    if vendor.owner_id != caller_id:
        raise PermissionDenied(f"vendor {vendor_id} belongs to another user")
    return vendor


async def create_vendor(session: AsyncSession, *, owner_id: uuid.UUID, data: VendorCreate, outbox: Outbox) -> Vendor:
    vendor = Vendor(owner_id=owner_id, **data.model_dump())
    session.add(vendor)
    await session.flush()
    await outbox.add(session, events.CREATED, events.vendor_data(vendor))
    return vendor


@functools.cache
def _update_statement(columns: tuple[str, ...]) -> str:
    """UPDATE of `columns` ($3...) of the caller's ($2) vendor ($1), its version advanced, the new row returned."""
    unknown = set(columns) - _CHANGEABLE
    if unknown:
        raise ValueError(f"not columns a change may set: {sorted(unknown)}")
    sets = [f'"{name}" = ${n}' for n, name in enumerate(columns, start=3)]
    now, step = len(columns) + 3, len(columns) + 4
    sets.append(f"updated_at = GREATEST(${now}, updated_at + ${step})")
    return f"UPDATE {_VENDOR.name} SET {', '.join(sets)} WHERE id = $1 AND owner_id = $2 RETURNING {_COLUMNS}"


async def _update_owned(
    connection: asyncpg.Connection[Record], *, vendor_id: uuid.UUID, caller_id: uuid.UUID, values: dict[str, Any]
) -> Record:
    """Change the caller's vendor in one statement and return the new row (no ORM object on the write path).

    The UPDATE holds the row's lock to the commit and advances `updated_at` strictly, as `Vendor.touch` does, from
    the row's current version (under concurrent changes PostgreSQL re-reads the row it waited for). When nothing
    matched, one more read tells NOT_FOUND from PERMISSION_DENIED.
    """
    columns = tuple(sorted(values))
    row: Record | None = await connection.fetchrow(
        _update_statement(columns), vendor_id, caller_id, *(values[c] for c in columns), utcnow(), NEXT_VERSION
    )
    if row is not None:
        return row
    if await connection.fetchval(_OWNER, vendor_id) is None:
        raise NotFound(f"vendor {vendor_id} not found")
    raise PermissionDenied(f"vendor {vendor_id} belongs to another user")


async def update_vendor(
    connection: asyncpg.Connection[Record],
    *,
    vendor_id: uuid.UUID,
    caller_id: uuid.UUID,
    changes: dict[str, Any],
    outbox: Outbox,
) -> Record:
    """Inside the caller's `Outbox.transaction()`: the change and its `vendor.updated` event."""
    vendor = await _update_owned(connection, vendor_id=vendor_id, caller_id=caller_id, values=changes)
    await outbox.add_on(connection, events.UPDATED, events.vendor_data(vendor))
    return vendor


async def set_location(
    connection: asyncpg.Connection[Record],
    *,
    vendor_id: uuid.UUID,
    caller_id: uuid.UUID,
    lat: float,
    long: float,
    outbox: Outbox,
) -> Record:
    """Record the vendor's current position (validated by the caller) and publish `vendor.location.updated`."""
    vendor = await _update_owned(
        connection, vendor_id=vendor_id, caller_id=caller_id, values={"lat": lat, "long": long}
    )
    await outbox.add_on(connection, events.LOCATION_UPDATED, events.location_data(vendor))
    return vendor


async def delete_vendor(session: AsyncSession, *, vendor_id: uuid.UUID, caller_id: uuid.UUID, outbox: Outbox) -> Vendor:
    vendor = await _owned(session, vendor_id=vendor_id, caller_id=caller_id)
    vendor.touch()  # the deletion is a change too: its event carries the next version
    await outbox.add(session, events.DELETED, events.vendor_data(vendor))
    await session.delete(vendor)
    await session.flush()
    return vendor


async def list_vendors(
    session: AsyncSession, *, owner_id: uuid.UUID | None = None, batch_size: int = 500
) -> AsyncIterator[Vendor]:
    """Every vendor (or one owner's) in creation order, read in keyset-paginated batches."""
    after: tuple[Any, uuid.UUID] | None = None
    while True:
        query = select(Vendor).order_by(col(Vendor.created_at), col(Vendor.id)).limit(batch_size)
        if owner_id is not None:
            query = query.where(Vendor.owner_id == owner_id)
        if after is not None:
            query = query.where(
                (col(Vendor.created_at) > after[0])
                | ((col(Vendor.created_at) == after[0]) & (col(Vendor.id) > after[1]))
            )
        rows = (await session.exec(query)).all()
        for vendor in rows:
            yield vendor
        if len(rows) < batch_size:
            return
        after = (rows[-1].created_at, rows[-1].id)
