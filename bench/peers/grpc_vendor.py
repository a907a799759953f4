"""The bare peer of the vendor service's calls: a grpc.aio server on the same proto talking to PostgreSQL with asyncpg,
nothing else.

What a user would otherwise write by hand: no interceptors, no tracing, no ORM, no health or reflection service.
bench/grpc_get_vendor.py and bench/grpc_update_vendor.py measure the vendor service beside it. GetVendorById reads
the row. UpdateVendor does the work the service's does, in one transaction: it locks the row and checks the caller
owns it, updates the fields the request set (checked by the service's own `VendorUpdate` rules, so both accept and
refuse the same input) and advances `updated_at`, and writes the `vendor.updated` event, the whole record in the
same envelope, to the same outbox table the service's relay reads. The other methods are UNIMPLEMENTED (the
generated servicer's default). Usage: `grpc_vendor.py --port P --dsn postgresql://...`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import functools
import json
import signal
import uuid
from typing import Any

import asyncpg
import grpc
from pydantic import ValidationError

from services.contracts.venta.vendor.v1 import vendor_pb2 as pb
from services.contracts.venta.vendor.v1 import vendor_pb2_grpc
from services.vendors.models import VendorUpdate

QUERY = "SELECT * FROM vendor WHERE id = $1"
LOCK = "SELECT owner_id FROM vendor WHERE id = $1 FOR UPDATE"
OUTBOX = "INSERT INTO event_outbox (message_id, type, payload, headers) VALUES ($1, $2, $3, $4)"
UPDATED = "vendor.updated"
# UpdateVendor's optional request fields and the columns they set; an empty string clears the column
COLUMNS = {
    "name": "name",
    "description": "description",
    "email": "email",
    "phone": "phone",
    "website": "website",
    "image_url": "primary_image",
}


@functools.lru_cache(maxsize=64)
def update_statement(columns: tuple[str, ...]) -> str:
    """UPDATE of `columns` ($2...) and of `updated_at`, the vendor's version: strictly increasing, as the service's."""
    sets = [f"{column} = ${i}" for i, column in enumerate(columns, start=2)]
    sets.append("updated_at = greatest(clock_timestamp(), updated_at + interval '1 microsecond')")
    return f"UPDATE vendor SET {', '.join(sets)} WHERE id = $1 RETURNING *"


def iso(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def updated_event(row: asyncpg.Record, message_id: str) -> str:
    """The `vendor.updated` envelope (version 1 of its data: the whole record), as JSON."""
    data = {
        "id": str(row["id"]),
        "ownerId": str(row["owner_id"]),
        "name": row["name"],
        "description": row["description"],
        "phone": row["phone"],
        "email": row["email"],
        "website": row["website"],
        "open": row["open"],
        "primaryImage": row["primary_image"],
        "lat": row["lat"],
        "long": row["long"],
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
    }
    envelope = {"type": UPDATED, "data": data, "timestamp": iso(dt.datetime.now(dt.UTC))}
    return json.dumps({**envelope, "messageId": message_id, "version": 1}, separators=(",", ":"))


class BareVendorService(vendor_pb2_grpc.VendorServiceServicer):
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def GetVendorById(
        self,
        request: pb.VendorLookupByIdData,
        context: grpc.aio.ServicerContext[pb.VendorLookupByIdData, pb.VendorLookupResponse],
    ) -> pb.VendorLookupResponse:
        try:
            vendor_id = uuid.UUID(request.id)
        except ValueError:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "id must be a UUID")
        row = await self.pool.fetchrow(QUERY, vendor_id)
        if row is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "vendor not found")
        return pb.VendorLookupResponse(
            vendor=pb.Vendor(
                id=str(row["id"]),
                lat=row["lat"],
                long=row["long"],
                name=row["name"],
                description=row["description"] or "",
                phone=row["phone"] or "",
                email=row["email"] or "",
                website=row["website"] or "",
                open=row["open"],
                primary_image=row["primary_image"] or "",
                created_at=row["created_at"].isoformat(),
                updated_at=row["updated_at"].isoformat(),
                owner_id=str(row["owner_id"]),
            )
        )

    async def UpdateVendor(
        self,
        request: pb.VendorUpdateData,
        context: grpc.aio.ServicerContext[pb.VendorUpdateData, pb.VendorUpdateResponse],
    ) -> pb.VendorUpdateResponse:
        try:
            vendor_id, caller_id = uuid.UUID(request.id), uuid.UUID(request.user_id)
        except ValueError:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "id and user_id must be UUIDs")
        changes: dict[str, Any] = {}
        for field, column in COLUMNS.items():
            if request.HasField(field):  # type: ignore[arg-type]  # COLUMNS holds the message's optional fields
                changes[column] = getattr(request, field) or None
        try:
            changes = VendorUpdate.model_validate(changes).model_dump(include=set(changes))
        except ValidationError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc.errors()[0]["msg"]))
        async with self.pool.acquire() as connection, connection.transaction():
            owner_id = await connection.fetchval(LOCK, vendor_id)
            if owner_id is None:
                await context.abort(grpc.StatusCode.NOT_FOUND, "vendor not found")
            if owner_id != caller_id:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, "vendor belongs to another user")
            row = await connection.fetchrow(update_statement(tuple(changes)), vendor_id, *changes.values())
            message_id = str(uuid.uuid4())
            await connection.execute(OUTBOX, message_id, UPDATED, updated_event(row, message_id), "{}")
        return pb.VendorUpdateResponse(message="Vendor updated", success=True)


async def serve(port: int, dsn: str, pool_size: int) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size)
    server = grpc.aio.server()
    servicer = BareVendorService(pool)  # type: ignore[abstract]  # the other methods stay UNIMPLEMENTED
    vendor_pb2_grpc.add_VendorServiceServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(grace=2)
    await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--pool-size", type=int, default=32)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.dsn, args.pool_size))


if __name__ == "__main__":
    main()
