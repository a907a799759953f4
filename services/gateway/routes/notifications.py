"""Favourites and notifications: forwarded to the notifications service, which owns them.

The gateway adds what it adds to every route (rate limit, request id, trace, error envelope, metrics) and passes the
request on as it came, the caller's token included: the notifications service verifies the token itself. Its
answers, error envelopes included, come back unchanged; when it cannot be reached, or its breaker is open, the
caller gets the gateway's own 502 envelope. The routes are declared one by one, so the gateway's OpenAPI document
lists them with their parameters.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import httpx
import pybreaker
from fastapi import APIRouter, Query, Request, Response

from services.gateway.deps import BearerToken as Token
from services.gateway.deps import ResourcesDep
from services.gateway.routes import errors, route
from services.kit.errors import Unavailable

router = APIRouter(tags=["notifications"])

FORWARDED_REQUEST_HEADERS = ("authorization", "content-type", "accept", "x-request-id")
FORWARDED_RESPONSE_HEADERS = ("content-type",)


async def forward(request: Request, resources: ResourcesDep) -> Response:
    """Send this request to the notifications service and return its answer as it is."""
    headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED_REQUEST_HEADERS}
    request_id = request.scope.get("state", {}).get("request_id")
    if request_id:
        headers["x-request-id"] = request_id
    try:
        with resources.notifications_breaker.calling():
            answer = await resources.notifications.request(
                request.method,
                request.url.path,
                params=list(request.query_params.multi_items()),
                content=await request.body(),
                headers=headers,
            )
            if answer.status_code >= 500:
                raise Unavailable(f"the notifications service answered {answer.status_code}")
    except pybreaker.CircuitBreakerError:
        raise Unavailable("the notifications service is unavailable (circuit open)") from None
    except httpx.HTTPError as exc:
        raise Unavailable(f"the notifications service is unavailable ({type(exc).__name__})") from None
    kept = {k: v for k, v in answer.headers.items() if k.lower() in FORWARDED_RESPONSE_HEADERS}
    return Response(content=answer.content, status_code=answer.status_code, headers=kept)


@route(router, "GET", "/v1/users/me/favourites", responses=errors(), summary="The caller's favourite vendors")
async def list_favourites(request: Request, resources: ResourcesDep, _: Token) -> Response:
    return await forward(request, resources)


@route(
    router,
    "PUT",
    "/v1/users/me/favourites/{vendor_id}",
    responses=errors(404),
    summary="Add a vendor to the caller's favourites (idempotent); its owner hears of its first one",
)
async def add_favourite(vendor_id: uuid.UUID, request: Request, resources: ResourcesDep, _: Token) -> Response:
    return await forward(request, resources)


@route(
    router,
    "DELETE",
    "/v1/users/me/favourites/{vendor_id}",
    status_code=204,
    responses=errors(),
    summary="Remove a vendor from the caller's favourites (idempotent)",
)
async def remove_favourite(vendor_id: uuid.UUID, request: Request, resources: ResourcesDep, _: Token) -> Response:
    return await forward(request, resources)


@route(router, "GET", "/v1/notifications", responses=errors(), summary="The caller's notifications, newest first")
async def list_notifications(
    request: Request,
    resources: ResourcesDep,
    _: Token,
    cursor: Annotated[str | None, Query(max_length=64, description="`nextCursor` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="page size (the service's maximum applies)")] = 20,
    unread: Annotated[bool, Query(description="only unread ones")] = False,
) -> Response:
    return await forward(request, resources)


@route(router, "GET", "/v1/notifications/unread-count", responses=errors(), summary="How many are unread")
async def unread_count(request: Request, resources: ResourcesDep, _: Token) -> Response:
    return await forward(request, resources)


@route(router, "POST", "/v1/notifications/read-all", responses=errors(), summary="Mark every notification read")
async def mark_all_read(request: Request, resources: ResourcesDep, _: Token) -> Response:
    return await forward(request, resources)


@route(router, "POST", "/v1/notifications/{notification_id}/read", responses=errors(404), summary="Mark one read")
async def mark_read(notification_id: uuid.UUID, request: Request, resources: ResourcesDep, _: Token) -> Response:
    return await forward(request, resources)
