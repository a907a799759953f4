"""The VendorService gRPC edge: protobuf in, validated models to the repository, protobuf out.

Nothing here decides a business rule; it converts and delegates. Errors are raised as domain errors and mapped to
status codes by the kit's interceptor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from services.contracts.venta.vendor.v1 import vendor_pb2 as pb
from services.contracts.venta.vendor.v1 import vendor_pb2_grpc
from services.kit.db.session import Database, Record
from services.kit.events.outbox import Outbox
from services.kit.grpc import Context
from services.kit.validation import check_coordinates, parse_uuid, validate
from services.vendors import repository
from services.vendors.models import Vendor, VendorCreate, VendorUpdate

# request field name for each model field whose name differs
FIELD_NAMES = {"primary_image": "image_url"}
OPTIONAL_FIELDS = ("description", "email", "phone", "website")


def to_proto(vendor: Vendor | Record) -> pb.Vendor:
    """A vendor (an ORM object, or a row of the vendor table: the same attribute names) as protobuf."""
    return pb.Vendor(
        id=str(vendor.id),
        lat=vendor.lat,
        long=vendor.long,
        name=vendor.name,
        description=vendor.description or "",
        phone=vendor.phone or "",
        email=vendor.email or "",
        website=vendor.website or "",
        open=vendor.open,
        primary_image=vendor.primary_image or "",
        created_at=vendor.created_at.isoformat(),
        updated_at=vendor.updated_at.isoformat(),
        owner_id=str(vendor.owner_id),
    )


def _changes(request: pb.VendorUpdateData) -> dict[str, Any]:
    """The fields the caller set; an empty optional field means "clear it"."""
    changes: dict[str, Any] = {}
    if request.HasField("name"):
        changes["name"] = request.name
    for field in OPTIONAL_FIELDS:
        if request.HasField(field):  # type: ignore[arg-type]
            changes[field] = getattr(request, field) or None
    if request.HasField("image_url"):
        changes["primary_image"] = request.image_url or None
    update = validate(VendorUpdate, changes, field_names=FIELD_NAMES)
    return update.model_dump(include=set(changes))


class VendorServicer(vendor_pb2_grpc.VendorServiceServicer):
    def __init__(self, db: Database, outbox: Outbox) -> None:
        self.db = db
        self.outbox = outbox

    async def GetVendorById(self, request: pb.VendorLookupByIdData, context: Context) -> pb.VendorLookupResponse:
        vendor_id = parse_uuid("id", request.id)
        async with self.db.connection() as connection:
            row = await repository.read_vendor(connection, vendor_id=vendor_id)
        return pb.VendorLookupResponse(vendor=to_proto(row))

    async def CreateVendor(self, request: pb.VendorCreateData, context: Context) -> pb.VendorCreateResponse:
        owner_id = parse_uuid("user_id", request.user_id)
        data = validate(
            VendorCreate,
            {
                "name": request.name,
                **{f: getattr(request, f) or None for f in OPTIONAL_FIELDS},
                "primary_image": request.image_url or None,
            },
            field_names=FIELD_NAMES,
        )
        async with self.db.session() as session:
            vendor = await repository.create_vendor(session, owner_id=owner_id, data=data, outbox=self.outbox)
            return pb.VendorCreateResponse(id=str(vendor.id))

    async def UpdateVendor(self, request: pb.VendorUpdateData, context: Context) -> pb.VendorUpdateResponse:
        vendor_id = parse_uuid("id", request.id)
        caller_id = parse_uuid("user_id", request.user_id)
        changes = _changes(request)
        async with self.outbox.transaction(self.db) as connection:
            await repository.update_vendor(
                connection, vendor_id=vendor_id, caller_id=caller_id, changes=changes, outbox=self.outbox
            )
        return pb.VendorUpdateResponse(message="Vendor updated", success=True)

    async def DeleteVendor(self, request: pb.VendorDeleteData, context: Context) -> pb.VendorUpdateResponse:
        vendor_id = parse_uuid("id", request.id)
        caller_id = parse_uuid("user_id", request.user_id)
        async with self.db.session() as session:
            await repository.delete_vendor(session, vendor_id=vendor_id, caller_id=caller_id, outbox=self.outbox)
        return pb.VendorUpdateResponse(message="Vendor deleted", success=True)

    async def SetVendorOpen(self, request: pb.VendorOpenData, context: Context) -> pb.VendorUpdateResponse:
        vendor_id = parse_uuid("id", request.id)
        caller_id = parse_uuid("user_id", request.user_id)
        async with self.outbox.transaction(self.db) as connection:
            await repository.update_vendor(
                connection, vendor_id=vendor_id, caller_id=caller_id, changes={"open": request.open}, outbox=self.outbox
            )
        return pb.VendorUpdateResponse(message="Vendor opened" if request.open else "Vendor closed", success=True)

    async def SetVendorPosition(self, request: pb.VendorPositionData, context: Context) -> pb.VendorUpdateResponse:
        vendor_id = parse_uuid("id", request.id)
        caller_id = parse_uuid("user_id", request.user_id)
        lat, long = check_coordinates("position", request.lat, request.long)
        async with self.outbox.transaction(self.db) as connection:
            await repository.set_location(
                connection, vendor_id=vendor_id, caller_id=caller_id, lat=lat, long=long, outbox=self.outbox
            )
        return pb.VendorUpdateResponse(message="Vendor position recorded", success=True)

    async def ListVendors(self, request: pb.ListVendorsRequest, context: Context) -> AsyncIterator[pb.Vendor]:
        owner_id = parse_uuid("owner_id", request.owner_id) if request.owner_id else None
        async with self.db.session() as session:
            async for vendor in repository.list_vendors(session, owner_id=owner_id):
                yield to_proto(vendor)
