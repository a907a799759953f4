"""The caller's own resources: the vendors they own (the user service asks the vendor service)."""

from __future__ import annotations

from fastapi import APIRouter

from services.contracts.venta.user.v1 import user_pb2 as pb
from services.gateway.deps import CurrentUser, UserClient
from services.gateway.models import UserVendor, UserVendors
from services.gateway.routes import errors, route

router = APIRouter(tags=["users"])


@route(
    router,
    "GET",
    "/v1/users/me/vendors",
    alias="/user/vendors",
    response_model=UserVendors,
    responses=errors(),
    summary="The vendors the caller owns",
)
async def my_vendors(caller: CurrentUser, users: UserClient) -> UserVendors:
    answer = await users.unary(users.stub.GetUserVendors, pb.UserVendorRequest(user_id=caller.user_id))
    return UserVendors(vendors=[UserVendor(id=v.id, name=v.name) for v in answer.vendors])
