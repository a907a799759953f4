"""Vendor persistence: every rule about who may change what is enforced here, inside the transaction.

Every change also writes its event to the outbox in the same transaction, so the vendor table and the events
describing it cannot diverge (a crash after the commit loses nothing: the relay publishes what is pending).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Row, bindparam, func, update
from sqlalchemy import select as core_select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

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
_VENDOR_BY_ID = core_select(_VENDOR).where(_VENDOR.c.id == bindparam("vendor_id"))


async def read_vendor(connection: AsyncConnection, *, vendor_id: uuid.UUID) -> Row[Any]:
    """The vendor as a row (Core, no ORM object): the read path of GetVendorById, the service's hottest call."""
    row = (await connection.execute(_VENDOR_BY_ID, {"vendor_id": vendor_id})).first()
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


async def _update_owned(
    session: AsyncSession, *, vendor_id: uuid.UUID, caller_id: uuid.UUID, values: dict[str, Any]
) -> Row[Any]:
    """Change the caller's vendor in one statement and return the new row (Core: no ORM object on the write path).

    The UPDATE holds the row's lock to the commit and advances `updated_at` strictly, as `Vendor.touch` does, from
    the row's current version (under concurrent changes PostgreSQL re-reads the row it waited for). When nothing
    matched, one more read tells NOT_FOUND from PERMISSION_DENIED.
    """
    connection = await session.connection()
    statement = (
        update(_VENDOR)
        .where(_VENDOR.c.id == vendor_id, _VENDOR.c.owner_id == caller_id)
        .values(**values, updated_at=func.greatest(utcnow(), _VENDOR.c.updated_at + NEXT_VERSION))
        .returning(*_VENDOR.c)
    )
    row = (await connection.execute(statement)).first()
    if row is not None:
        return row
    owner = (await connection.execute(core_select(_VENDOR.c.owner_id).where(_VENDOR.c.id == vendor_id))).first()
    if owner is None:
        raise NotFound(f"vendor {vendor_id} not found")
    raise PermissionDenied(f"vendor {vendor_id} belongs to another user")


async def update_vendor(
    session: AsyncSession, *, vendor_id: uuid.UUID, caller_id: uuid.UUID, changes: dict[str, Any], outbox: Outbox
) -> Row[Any]:
    vendor = await _update_owned(session, vendor_id=vendor_id, caller_id=caller_id, values=changes)
    await outbox.add(session, events.UPDATED, events.vendor_data(vendor))
    return vendor


async def set_location(
    session: AsyncSession, *, vendor_id: uuid.UUID, caller_id: uuid.UUID, lat: float, long: float, outbox: Outbox
) -> Row[Any]:
    """Record the vendor's current position (validated by the caller) and publish `vendor.location.updated`."""
    vendor = await _update_owned(session, vendor_id=vendor_id, caller_id=caller_id, values={"lat": lat, "long": long})
    await outbox.add(session, events.LOCATION_UPDATED, events.location_data(vendor))
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
