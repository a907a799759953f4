"""FastAPI dependencies as `Annotated` aliases: what a route needs is named in its signature, nothing else.

`CurrentUser` authenticates the bearer token (the kit's one verification path) and resolves the internal user;
`VendorClient`, `UserClient`, `LocationClient` are the breaker-wrapped peers; `RateLimited` is applied to every API
router so a refusal happens before authentication costs anything. Every dependency is `async def`: FastAPI runs a
plain `def` dependency in a worker thread, a thread hop per dependency per request for an attribute read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.contracts.venta.location.v1 import location_pb2_grpc
from services.contracts.venta.user.v1 import user_pb2_grpc
from services.contracts.venta.vendor.v1 import vendor_pb2_grpc
from services.gateway.cache import VendorCache
from services.gateway.config import GatewaySettings
from services.gateway.images import ImageStore
from services.gateway.ratelimit import ANSWER_HEADERS
from services.gateway.resources import Resources
from services.kit.auth import Principal, bearer_token
from services.kit.grpc.client import PeerClient
from services.kit.http.envelope import ApiError, ErrorType
from services.kit.http.middleware import route_template
from services.kit.metrics import RATE_LIMIT_REJECTIONS
from services.search.provider import SearchProvider


async def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


async def app_settings(request: Request) -> GatewaySettings:
    """The settings the app was built with (`create_app(settings)`, by default the cached `get_settings()`).

    Read from the app rather than overriding `get_settings` in `dependency_overrides`: any override makes FastAPI
    rebuild every dependency graph on every request.
    """
    settings: GatewaySettings = request.app.state.settings
    return settings


SettingsDep = Annotated[GatewaySettings, Depends(app_settings)]
ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def _vendors(resources: ResourcesDep) -> PeerClient[Any]:
    return resources.vendors


async def _users(resources: ResourcesDep) -> PeerClient[Any]:
    return resources.users


async def _location(resources: ResourcesDep) -> PeerClient[Any]:
    return resources.location


async def _vendor_cache(resources: ResourcesDep) -> VendorCache:
    return resources.vendor_cache


async def _images(resources: ResourcesDep) -> ImageStore:
    return resources.images


async def _search(resources: ResourcesDep) -> SearchProvider:
    return resources.search


if TYPE_CHECKING:  # the async stub types exist only in the generated .pyi files
    VendorStub = vendor_pb2_grpc.VendorServiceAsyncStub
    UserStub = user_pb2_grpc.UserServiceAsyncStub
    LocationStub = location_pb2_grpc.LocationServiceAsyncStub
else:
    VendorStub = vendor_pb2_grpc.VendorServiceStub
    UserStub = user_pb2_grpc.UserServiceStub
    LocationStub = location_pb2_grpc.LocationServiceStub

VendorClient = Annotated[PeerClient[VendorStub], Depends(_vendors)]
UserClient = Annotated[PeerClient[UserStub], Depends(_users)]
LocationClient = Annotated[PeerClient[LocationStub], Depends(_location)]
VendorCacheDep = Annotated[VendorCache, Depends(_vendor_cache)]
ImageStoreDep = Annotated[ImageStore, Depends(_images)]
SearchDep = Annotated[SearchProvider, Depends(_search)]

_bearer = HTTPBearer(auto_error=False, description="A Clerk session token, or one from the local identity provider")
BearerToken = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
"""Declares the bearer scheme in the OpenAPI document; routes that forward the token unverified name it too."""


async def current_user(
    request: Request,
    resources: ResourcesDep,
    _: BearerToken,
) -> Principal:
    token = bearer_token(request.headers.get("authorization"))
    return await resources.authenticator.authenticate(token)


CurrentUser = Annotated[Principal, Depends(current_user)]


async def rate_limit(request: Request, resources: ResourcesDep) -> None:
    decision = await resources.rate_limiter.check(request)
    if decision is None:
        return
    if not decision.allowed:
        RATE_LIMIT_REJECTIONS.labels(resources.settings.service_name, route_template(request.scope)).inc()
        raise ApiError(
            ErrorType.RATE_LIMIT,
            "RATE_LIMITED",
            f"rate limit of {decision.limit} requests exceeded; retry in {decision.retry_after_s}s",
            headers=decision.headers(),
        )
    request.scope.setdefault("state", {})[ANSWER_HEADERS] = decision.headers()  # RateLimitHeaders puts them on


RateLimited = Depends(rate_limit)
