"""Vendors inside a map viewport, answered by the location service's bounding-box query."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Query

from services.contracts.venta.location.v1 import location_pb2 as pb
from services.gateway.deps import CurrentUser, LocationClient
from services.gateway.models import Location, NearbyVendor, NearbyVendors
from services.gateway.routes import errors, route
from services.kit.errors import InvalidArgument

router = APIRouter(tags=["vendors"])

CORNER = r"^\s*-?[0-9.]+\s*,\s*-?[0-9.]+\s*$"


def parse_corner(field: str, value: str) -> pb.Location:
    """`"lat,lng"` -> Location, or InvalidArgument naming the query parameter."""
    lat_text, _, lng_text = value.partition(",")
    try:
        lat, lng = float(lat_text), float(lng_text)
    except ValueError:
        raise InvalidArgument(field, "must be 'lat,lng'") from None
    if not (math.isfinite(lat) and -90 <= lat <= 90 and math.isfinite(lng) and -180 <= lng <= 180):
        raise InvalidArgument(field, "must be a latitude in [-90, 90] and a longitude in [-180, 180]")
    return pb.Location(lat=lat, long=lng)


@route(
    router,
    "GET",
    "/v1/vendors/nearby",
    response_model=NearbyVendors,
    responses=errors(),
    summary="Vendors inside a viewport (south-west and north-east corners)",
)
async def nearby_vendors(
    sw: Annotated[str, Query(pattern=CORNER, max_length=64, description="south-west corner: lat,lng")],
    ne: Annotated[str, Query(pattern=CORNER, max_length=64, description="north-east corner: lat,lng")],
    caller: CurrentUser,
    location: LocationClient,
) -> NearbyVendors:
    request = pb.VendorLocationRequest(sw_location=parse_corner("sw", sw), ne_location=parse_corner("ne", ne))
    answer = await location.unary(location.stub.VendorLocations, request)
    return NearbyVendors(
        vendors=[
            NearbyVendor(id=v.id, location=Location(lat=v.location.lat, long=v.location.long)) for v in answer.vendors
        ]
    )
