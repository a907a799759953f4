"""Vendors: read (through the read cache), create, update and delete (owner only, enforced by the vendor service)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from services.contracts.venta.vendor.v1 import vendor_pb2 as pb
from services.gateway.cache import LOOKED_UP
from services.gateway.deps import CurrentUser, VendorCacheDep, VendorClient
from services.gateway.models import (
    VendorChanged,
    VendorCreate,
    VendorCreated,
    VendorOpenState,
    VendorPublic,
    VendorUpdate,
)
from services.gateway.routes import errors, route

router = APIRouter(tags=["vendors"])

VendorId = Annotated[uuid.UUID, Path(alias="id", description="The vendor's id (a UUID)")]


def to_public(vendor: pb.Vendor) -> VendorPublic:
    return VendorPublic(
        id=vendor.id,
        name=vendor.name,
        description=vendor.description or None,
        phone=vendor.phone or None,
        email=vendor.email or None,
        website=vendor.website or None,
        open=vendor.open,
        primary_image=vendor.primary_image or None,
        lat=vendor.lat if vendor.HasField("lat") else None,
        long=vendor.long if vendor.HasField("long") else None,
        owner_id=vendor.owner_id,
        created_at=vendor.created_at,
        updated_at=vendor.updated_at,
    )


@route(
    router,
    "GET",
    "/v1/vendors/{id:uuid}",
    alias="/vendor/{id:uuid}",
    response_model=VendorPublic,
    responses=errors(404),
    summary="Get a vendor",
)
async def get_vendor(
    request: Request,
    vendor_id: VendorId,
    caller: CurrentUser,
    vendors: VendorClient,
    cache: VendorCacheDep,
) -> Response:
    key = str(vendor_id)
    looked_up = request.scope.get("state", {}).get(LOOKED_UP)  # by the cached-read path: a miss, or a body to compress
    body, generation = looked_up[1:] if looked_up and looked_up[0] == key else await cache.get(key)
    if body is None:
        answer = await vendors.unary(vendors.stub.GetVendorById, pb.VendorLookupByIdData(id=key))
        body = to_public(answer.vendor).model_dump_json(by_alias=True).encode()
        await cache.put(key, body, generation)
    return Response(body, media_type="application/json")


@route(
    router,
    "POST",
    "/v1/vendors",
    alias="/vendor",
    status_code=201,
    response_model=VendorCreated,
    responses=errors(),
    summary="Create a vendor owned by the caller",
)
async def create_vendor(body: VendorCreate, caller: CurrentUser, vendors: VendorClient) -> VendorCreated:
    answer = await vendors.unary(
        vendors.stub.CreateVendor,
        pb.VendorCreateData(
            name=body.name,
            description=body.description or "",
            email=body.email or "",
            phone=body.phone or "",
            website=body.website or "",
            image_url=body.image_url or "",
            user_id=caller.user_id,
        ),
    )
    return VendorCreated(id=answer.id)


def _update_request(vendor_id: str, body: VendorUpdate, caller_id: str) -> pb.VendorUpdateData:
    request = pb.VendorUpdateData(id=vendor_id, user_id=caller_id)
    for field in body.model_fields_set:
        setattr(request, field, getattr(body, field) or "")  # present but null: clear the field
    return request


async def _update(
    vendor_id: VendorId, body: VendorUpdate, caller: CurrentUser, vendors: VendorClient, cache: VendorCacheDep
) -> VendorChanged:
    key = str(vendor_id)
    answer = await vendors.unary(vendors.stub.UpdateVendor, _update_request(key, body, caller.user_id))
    await cache.invalidate(key)
    return VendorChanged(message=answer.message, success=answer.success)


for _method in ("PUT", "PATCH"):
    route(
        router,
        _method,
        "/v1/vendors/{id:uuid}",
        alias="/vendor/{id:uuid}",
        response_model=VendorChanged,
        responses=errors(403, 404),
        summary="Update a vendor (owner only); absent fields are kept, null clears",
        name=f"update_vendor_{_method.lower()}",
    )(_update)


@route(
    router,
    "DELETE",
    "/v1/vendors/{id:uuid}",
    response_model=VendorChanged,
    responses=errors(403, 404),
    summary="Delete a vendor (owner only)",
)
async def delete_vendor(
    vendor_id: VendorId, caller: CurrentUser, vendors: VendorClient, cache: VendorCacheDep
) -> VendorChanged:
    key = str(vendor_id)
    answer = await vendors.unary(vendors.stub.DeleteVendor, pb.VendorDeleteData(id=key, user_id=caller.user_id))
    await cache.invalidate(key)
    return VendorChanged(message=answer.message, success=answer.success)


@route(
    router,
    "PUT",
    "/v1/vendors/{id:uuid}/open",
    response_model=VendorChanged,
    responses=errors(403, 404),
    summary="Open or close a vendor (owner only); publishes vendor.updated, so search's open filter follows",
)
async def set_vendor_open(
    vendor_id: VendorId, body: VendorOpenState, caller: CurrentUser, vendors: VendorClient, cache: VendorCacheDep
) -> VendorChanged:
    key = str(vendor_id)
    answer = await vendors.unary(
        vendors.stub.SetVendorOpen, pb.VendorOpenData(id=key, user_id=caller.user_id, open=body.open)
    )
    await cache.invalidate(key)
    return VendorChanged(message=answer.message, success=answer.success)
