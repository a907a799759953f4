"""The vendor service over real gRPC on real PostgreSQL: CRUD, ownership, streaming, and garbage input."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from services.contracts.venta.vendor.v1 import vendor_pb2 as pb
from services.contracts.venta.vendor.v1 import vendor_pb2_grpc
from services.kit.grpc.server import GrpcServiceHost
from tests.support.databases import row_count

Stub = vendor_pb2_grpc.VendorServiceStub


async def _status(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def test_owner_lifecycle(vendors: Stub) -> None:
    owner = str(uuid.uuid4())
    created = await vendors.CreateVendor(
        pb.VendorCreateData(
            name="  Tacos El Rey ",
            description="al pastor",
            email="rey@tacos.mx",
            phone="+52 55 1234 5678",
            website="https://tacos.mx",
            image_url="https://img.tacos.mx/1.png",
            user_id=owner,
        )
    )
    got = (await vendors.GetVendorById(pb.VendorLookupByIdData(id=created.id))).vendor
    assert (got.id, got.name, got.owner_id, got.email, got.primary_image) == (
        created.id,
        "Tacos El Rey",
        owner,
        "rey@tacos.mx",
        "https://img.tacos.mx/1.png",
    )
    assert got.open is False and not got.HasField("lat")

    updated = await vendors.UpdateVendor(pb.VendorUpdateData(id=created.id, user_id=owner, name="Tacos II", phone=""))
    assert updated.success
    got = (await vendors.GetVendorById(pb.VendorLookupByIdData(id=created.id))).vendor
    assert (got.name, got.phone, got.description) == ("Tacos II", "", "al pastor")  # absent fields are kept
    assert got.updated_at > got.created_at

    assert (await vendors.SetVendorOpen(pb.VendorOpenData(id=created.id, user_id=owner, open=True))).success
    assert (await vendors.GetVendorById(pb.VendorLookupByIdData(id=created.id))).vendor.open is True
    position = pb.VendorPositionData(id=created.id, user_id=owner, lat=19.4326, long=-99.1332)
    assert (await vendors.SetVendorPosition(position)).success
    got = (await vendors.GetVendorById(pb.VendorLookupByIdData(id=created.id))).vendor
    assert (got.lat, got.long) == (19.4326, -99.1332)

    assert (await vendors.DeleteVendor(pb.VendorDeleteData(id=created.id, user_id=owner))).success
    err = await _status(vendors.GetVendorById(pb.VendorLookupByIdData(id=created.id)))
    assert err.code() == grpc.StatusCode.NOT_FOUND


async def test_only_the_owner_may_change_a_vendor(vendors: Stub) -> None:
    owner, stranger = str(uuid.uuid4()), str(uuid.uuid4())
    vid = (await vendors.CreateVendor(pb.VendorCreateData(name="Mine", user_id=owner))).id
    for call in (
        vendors.UpdateVendor(pb.VendorUpdateData(id=vid, user_id=stranger, name="Stolen")),
        vendors.DeleteVendor(pb.VendorDeleteData(id=vid, user_id=stranger)),
        vendors.SetVendorOpen(pb.VendorOpenData(id=vid, user_id=stranger, open=True)),
        vendors.SetVendorPosition(pb.VendorPositionData(id=vid, user_id=stranger, lat=1.0, long=2.0)),
    ):
        assert (await _status(call)).code() == grpc.StatusCode.PERMISSION_DENIED
    vendor = (await vendors.GetVendorById(pb.VendorLookupByIdData(id=vid))).vendor
    assert (vendor.name, vendor.open) == ("Mine", False)


async def test_missing_vendor_is_not_found(vendors: Stub) -> None:
    missing, caller = str(uuid.uuid4()), str(uuid.uuid4())
    for call in (
        vendors.GetVendorById(pb.VendorLookupByIdData(id=missing)),
        vendors.UpdateVendor(pb.VendorUpdateData(id=missing, user_id=caller, name="x")),
        vendors.DeleteVendor(pb.VendorDeleteData(id=missing, user_id=caller)),
        vendors.SetVendorOpen(pb.VendorOpenData(id=missing, user_id=caller, open=True)),
        vendors.SetVendorPosition(pb.VendorPositionData(id=missing, user_id=caller, lat=1.0, long=2.0)),
    ):
        assert (await _status(call)).code() == grpc.StatusCode.NOT_FOUND


async def test_list_vendors_streams_all_or_one_owners(vendors: Stub) -> None:
    owner = str(uuid.uuid4())
    ids = [(await vendors.CreateVendor(pb.VendorCreateData(name=f"v{i}", user_id=owner))).id for i in range(3)]
    mine = [v.id async for v in vendors.ListVendors(pb.ListVendorsRequest(owner_id=owner))]
    assert mine == ids
    everyone = {v.id async for v in vendors.ListVendors(pb.ListVendorsRequest())}
    assert set(ids) <= everyone


LONG = "x" * 5000
OWNER = str(uuid.uuid4())
VID = str(uuid.uuid4())

INVALID: list[tuple[str, Callable[[Stub], Awaitable[Any]], str]] = [
    ("create: empty name", lambda s: s.CreateVendor(pb.VendorCreateData(name="", user_id=OWNER)), "name"),
    ("create: blank name", lambda s: s.CreateVendor(pb.VendorCreateData(name="   ", user_id=OWNER)), "name"),
    ("create: oversized name", lambda s: s.CreateVendor(pb.VendorCreateData(name=LONG, user_id=OWNER)), "name"),
    (
        "create: oversized description",
        lambda s: s.CreateVendor(pb.VendorCreateData(name="a", description=LONG, user_id=OWNER)),
        "description",
    ),
    (
        "create: bad email",
        lambda s: s.CreateVendor(pb.VendorCreateData(name="a", email="nope", user_id=OWNER)),
        "email",
    ),
    (
        "create: bad phone",
        lambda s: s.CreateVendor(pb.VendorCreateData(name="a", phone="call me", user_id=OWNER)),
        "phone",
    ),
    (
        "create: bad website",
        lambda s: s.CreateVendor(pb.VendorCreateData(name="a", website="javascript:alert(1)", user_id=OWNER)),
        "website",
    ),
    (
        "create: bad image url",
        lambda s: s.CreateVendor(pb.VendorCreateData(name="a", image_url="ftp://x", user_id=OWNER)),
        "image_url",
    ),
    ("create: missing user", lambda s: s.CreateVendor(pb.VendorCreateData(name="a")), "user_id"),
    ("create: bad user uuid", lambda s: s.CreateVendor(pb.VendorCreateData(name="a", user_id="user_123")), "user_id"),
    ("create: oversized user id", lambda s: s.CreateVendor(pb.VendorCreateData(name="a", user_id=LONG)), "user_id"),
    ("get: missing id", lambda s: s.GetVendorById(pb.VendorLookupByIdData()), "id"),
    ("get: bad uuid", lambda s: s.GetVendorById(pb.VendorLookupByIdData(id="'; DROP TABLE vendor;--")), "id"),
    ("update: bad id", lambda s: s.UpdateVendor(pb.VendorUpdateData(id="1", user_id=OWNER, name="a")), "id"),
    ("update: missing user", lambda s: s.UpdateVendor(pb.VendorUpdateData(id=VID, name="a")), "user_id"),
    ("update: empty name", lambda s: s.UpdateVendor(pb.VendorUpdateData(id=VID, user_id=OWNER, name="")), "name"),
    (
        "update: oversized website",
        lambda s: s.UpdateVendor(pb.VendorUpdateData(id=VID, user_id=OWNER, website="https://a.io/" + LONG)),
        "website",
    ),
    ("update: bad email", lambda s: s.UpdateVendor(pb.VendorUpdateData(id=VID, user_id=OWNER, email="@")), "email"),
    ("delete: bad id", lambda s: s.DeleteVendor(pb.VendorDeleteData(id="x", user_id=OWNER)), "id"),
    ("delete: missing user", lambda s: s.DeleteVendor(pb.VendorDeleteData(id=VID)), "user_id"),
    ("open: bad id", lambda s: s.SetVendorOpen(pb.VendorOpenData(id="", user_id=OWNER, open=True)), "id"),
    ("open: bad user", lambda s: s.SetVendorOpen(pb.VendorOpenData(id=VID, user_id="me", open=True)), "user_id"),
    ("position: bad id", lambda s: s.SetVendorPosition(pb.VendorPositionData(id="v", user_id=OWNER)), "id"),
    ("position: missing user", lambda s: s.SetVendorPosition(pb.VendorPositionData(id=VID)), "user_id"),
    (
        "position: latitude out of range",
        lambda s: s.SetVendorPosition(pb.VendorPositionData(id=VID, user_id=OWNER, lat=91, long=0)),
        "position.lat",
    ),
    (
        "position: longitude not a number",
        lambda s: s.SetVendorPosition(pb.VendorPositionData(id=VID, user_id=OWNER, lat=0, long=float("nan"))),
        "position.long",
    ),
]


@pytest.mark.parametrize(("case", "call", "field"), INVALID, ids=[c[0] for c in INVALID])
async def test_invalid_input_is_rejected_naming_the_field(
    vendors: Stub, vendors_host: GrpcServiceHost, case: str, call: Callable[[Stub], Awaitable[Any]], field: str
) -> None:
    # a real vendor that updates would hit, so "nothing is written" is checked against existing data too
    await vendors.CreateVendor(pb.VendorCreateData(name="Keep", user_id=OWNER))
    before = await row_count(vendors_host, "vendor")
    err = await _status(call(vendors))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (case, err.code(), err.details())
    assert err.details().startswith(f"{field}:") or err.details().startswith(f"{field}."), err.details()
    assert dict(err.trailing_metadata() or ())["venta-field"] == field
    assert await row_count(vendors_host, "vendor") == before


async def test_invalid_stream_request_is_invalid_argument(vendors: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        [v async for v in vendors.ListVendors(pb.ListVendorsRequest(owner_id="not-a-uuid"))]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
