"""The location service: positions in, bounding boxes out, from a GiST index; garbage coordinates refused."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from services.contracts.venta.location.v1 import location_pb2 as pb
from services.contracts.venta.location.v1 import location_pb2_grpc
from services.kit.grpc.server import GrpcServiceHost
from services.location.repository import box_query
from tests.support.databases import row_count

Stub = location_pb2_grpc.LocationServiceStub


def box(s: float, w: float, n: float, e: float) -> pb.VendorLocationRequest:
    return pb.VendorLocationRequest(sw_location=pb.Location(lat=s, long=w), ne_location=pb.Location(lat=n, long=e))


async def _put(stub: Stub, lat: float, long: float) -> str:
    vid = str(uuid.uuid4())
    await stub.UpdateVendorLocation(pb.LocationUpdate(entity_id=vid, location=pb.Location(lat=lat, long=long)))
    return vid


async def test_viewport_returns_vendors_inside_only(location: Stub) -> None:
    inside = await _put(location, 19.43, -99.13)
    outside = await _put(location, 19.60, -99.13)
    found = {
        v.id: (v.location.lat, v.location.long)
        for v in (await location.VendorLocations(box(19.3, -99.3, 19.5, -99.0))).vendors
    }
    assert found[inside] == (19.43, -99.13)  # latitude stays latitude
    assert outside not in found


async def test_moving_updates_the_position(location: Stub) -> None:
    vid = await _put(location, 10.0, 10.0)
    await location.UpdateVendorLocation(pb.LocationUpdate(entity_id=vid, location=pb.Location(lat=-10.0, long=-10.0)))
    assert vid not in {v.id for v in (await location.VendorLocations(box(9, 9, 11, 11))).vendors}
    assert vid in {v.id for v in (await location.VendorLocations(box(-11, -11, -9, -9))).vendors}
    await location.RemoveVendorLocation(pb.RemoveLocationRequest(entity_id=vid))
    assert vid not in {v.id for v in (await location.VendorLocations(box(-11, -11, -9, -9))).vendors}


async def test_viewport_across_the_antimeridian(location: Stub) -> None:
    east, west, middle = (
        await _put(location, 0.5, 179.5),
        await _put(location, 0.5, -179.5),
        await _put(location, 0.5, 0),
    )
    found = {v.id for v in (await location.VendorLocations(box(0, 179, 1, -179))).vendors}
    assert {east, west} <= found and middle not in found


async def test_bounding_box_query_uses_the_gist_index(location: Stub, location_host: GrpcServiceHost) -> None:
    await _put(location, 10.2, 10.2)
    assert location_host.database is not None
    engine = location_host.database.engine
    async with engine.connect() as conn:  # 20,000 positions spread over the world, so a scan would be costly
        await conn.exec_driver_sql(
            "INSERT INTO vendor_location SELECT gen_random_uuid(), random() * 160 - 80, random() * 340 - 170, now() "
            "FROM generate_series(1, 20000)"
        )
        await conn.commit()
        await conn.exec_driver_sql("ANALYZE vendor_location")
        query = box_query(10.0, 10.0, 10.5, 10.5, 100).compile(engine, compile_kwargs={"literal_binds": True})
        plan = "\n".join(row[0] for row in await conn.exec_driver_sql(f"EXPLAIN {query}"))
    assert "ix_vendor_location_point" in plan, plan
    assert "Seq Scan" not in plan, plan


VID = str(uuid.uuid4())
OK = pb.Location(lat=1, long=1)
INVALID: list[tuple[str, Callable[[Stub], Awaitable[Any]], str]] = [
    (
        "update: lat > 90",
        lambda s: s.UpdateVendorLocation(pb.LocationUpdate(entity_id=VID, location=pb.Location(lat=91, long=0))),
        "location.lat",
    ),
    (
        "update: long < -180",
        lambda s: s.UpdateVendorLocation(pb.LocationUpdate(entity_id=VID, location=pb.Location(lat=0, long=-181))),
        "location.long",
    ),
    (
        "update: NaN",
        lambda s: s.UpdateVendorLocation(
            pb.LocationUpdate(entity_id=VID, location=pb.Location(lat=float("nan"), long=0))
        ),
        "location.lat",
    ),
    (
        "update: inf",
        lambda s: s.UpdateVendorLocation(
            pb.LocationUpdate(entity_id=VID, location=pb.Location(lat=0, long=float("inf")))
        ),
        "location.long",
    ),
    ("update: no location", lambda s: s.UpdateVendorLocation(pb.LocationUpdate(entity_id=VID)), "location"),
    ("update: no entity", lambda s: s.UpdateVendorLocation(pb.LocationUpdate(location=OK)), "entity_id"),
    (
        "update: bad entity",
        lambda s: s.UpdateVendorLocation(pb.LocationUpdate(entity_id="v-1", location=OK)),
        "entity_id",
    ),
    (
        "update: oversized entity",
        lambda s: s.UpdateVendorLocation(pb.LocationUpdate(entity_id="a" * 10_000, location=OK)),
        "entity_id",
    ),
    (
        "user update: bad lat",
        lambda s: s.UpdateUserLocation(pb.LocationUpdate(entity_id=VID, location=pb.Location(lat=-90.5, long=0))),
        "location.lat",
    ),
    ("remove: bad entity", lambda s: s.RemoveVendorLocation(pb.RemoveLocationRequest(entity_id="x")), "entity_id"),
    ("box: missing sw", lambda s: s.VendorLocations(pb.VendorLocationRequest(ne_location=OK)), "sw_location"),
    ("box: missing ne", lambda s: s.VendorLocations(pb.VendorLocationRequest(sw_location=OK)), "ne_location"),
    ("box: sw out of range", lambda s: s.VendorLocations(box(-100, 0, 1, 1)), "sw_location.lat"),
    ("box: ne out of range", lambda s: s.VendorLocations(box(0, 0, 1, 200)), "ne_location.long"),
    ("box: south above north", lambda s: s.VendorLocations(box(10, 0, 5, 1)), "sw_location.lat"),
]


@pytest.mark.parametrize(("case", "call", "field"), INVALID, ids=[c[0] for c in INVALID])
async def test_invalid_input_is_rejected_naming_the_field(
    location: Stub, location_host: GrpcServiceHost, case: str, call: Callable[[Stub], Awaitable[Any]], field: str
) -> None:
    await _put(location, 1, 1)
    before = await row_count(location_host, "vendor_location"), await row_count(location_host, "user_location")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(location)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (case, caught.value.details())
    assert dict(caught.value.trailing_metadata() or ())["venta-field"] == field
    after = await row_count(location_host, "vendor_location"), await row_count(location_host, "user_location")
    assert after == before
