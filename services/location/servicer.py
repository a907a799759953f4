"""The LocationService gRPC edge: validates coordinates and ids, then reads/writes positions."""

from __future__ import annotations

from services.contracts.venta.location.v1 import location_pb2 as pb
from services.contracts.venta.location.v1 import location_pb2_grpc
from services.kit.db.session import Database
from services.kit.errors import InvalidArgument
from services.kit.grpc import Context
from services.kit.validation import check_coordinates, parse_uuid
from services.location import repository


def _location(field: str, message: pb.LocationUpdate | pb.VendorLocationRequest, name: str) -> tuple[float, float]:
    if not message.HasField(name):  # type: ignore[arg-type]
        raise InvalidArgument(field, "is required")
    location: pb.Location = getattr(message, name)
    return check_coordinates(field, location.lat, location.long)


class LocationServicer(location_pb2_grpc.LocationServiceServicer):
    def __init__(self, db: Database, *, max_results: int) -> None:
        self.db = db
        self.max_results = max_results

    async def _update(self, kind: str, request: pb.LocationUpdate) -> pb.LocationUpdateResponse:
        entity_id = parse_uuid("entity_id", request.entity_id)
        lat, long = _location("location", request, "location")
        async with self.db.session() as session:
            at = await repository.upsert(session, kind=kind, entity_id=entity_id, lat=lat, long=long)
        return pb.LocationUpdateResponse(updated_at=at.isoformat())

    async def UpdateVendorLocation(self, request: pb.LocationUpdate, context: Context) -> pb.LocationUpdateResponse:
        return await self._update("vendor", request)

    async def UpdateUserLocation(self, request: pb.LocationUpdate, context: Context) -> pb.LocationUpdateResponse:
        return await self._update("user", request)

    async def RemoveVendorLocation(
        self, request: pb.RemoveLocationRequest, context: Context
    ) -> pb.LocationUpdateResponse:
        entity_id = parse_uuid("entity_id", request.entity_id)
        async with self.db.session() as session:
            await repository.remove(session, kind="vendor", entity_id=entity_id)
        return pb.LocationUpdateResponse()

    async def VendorLocations(self, request: pb.VendorLocationRequest, context: Context) -> pb.VendorLocationResponse:
        south, west = _location("sw_location", request, "sw_location")
        north, east = _location("ne_location", request, "ne_location")
        if south > north:
            raise InvalidArgument("sw_location.lat", "must not be north of ne_location.lat")
        async with self.db.read() as session:
            found = await repository.vendors_in_box(
                session, south=south, west=west, north=north, east=east, limit=self.max_results
            )
        return pb.VendorLocationResponse(
            vendors=[
                pb.VendorLocation(id=str(p.entity_id), location=pb.Location(lat=p.lat, long=p.long)) for p in found
            ]
        )
