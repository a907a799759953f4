"""The bare peer of GetVendorById: a grpc.aio server on the same proto reading the row with asyncpg, nothing else.

What a user would otherwise write by hand: no interceptors, no tracing, no ORM, no health or reflection service.
bench/grpc_get_vendor.py measures the vendor service beside it. Only GetVendorById is answered; the other methods
are UNIMPLEMENTED (the generated servicer's default). Usage: `grpc_vendor.py --port P --dsn postgresql://...`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import uuid

import asyncpg
import grpc

from services.contracts.venta.vendor.v1 import vendor_pb2 as pb
from services.contracts.venta.vendor.v1 import vendor_pb2_grpc

QUERY = "SELECT * FROM vendor WHERE id = $1"


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
