"""Vendor search: text (typo tolerant) and/or around a point, through the kit's search provider interface.

The gateway only queries; search sync keeps the index equal to the vendor table from `vendor.*` events. Which
engine answers (Algolia, or the self-hosted PostgreSQL provider) is configuration (`VENTA_SEARCH_*`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.gateway.deps import CurrentUser, SearchDep
from services.gateway.models import SearchHit, SearchResults
from services.gateway.routes import errors, route
from services.kit.errors import InvalidArgument, Unavailable
from services.kit.geo import distance_m
from services.search.provider import SearchQuery, SearchUnavailable

router = APIRouter(tags=["vendors"])


def to_hit(document: dict[str, Any], around: tuple[float, float] | None) -> SearchHit:
    geo = document.get("_geoloc") or {}
    lat, lng = geo.get("lat"), geo.get("lng")
    point = (float(lat), float(lng)) if isinstance(lat, (int, float)) and isinstance(lng, (int, float)) else None
    return SearchHit(
        id=str(document["objectID"]),
        name=str(document.get("name") or ""),
        description=document.get("description"),
        open=bool(document.get("open", False)),
        primary_image=document.get("primaryImage"),
        lat=point[0] if point else None,
        long=point[1] if point else None,
        distance_m=round(distance_m(*around, *point), 1) if around and point else None,
    )


def _query(
    text: str, lat: float | None, lng: float | None, radius: int | None, open_: bool | None, page: int, limit: int
) -> SearchQuery:
    if (lat is None) != (lng is None):
        raise InvalidArgument("lng" if lng is None else "lat", "give both lat and lng, or neither")
    if radius is not None and lat is None:
        raise InvalidArgument("radius", "needs lat and lng")
    return SearchQuery(text=text, lat=lat, lng=lng, radius_m=radius, open=open_, page=page, hits_per_page=limit)


@route(
    router,
    "GET",
    "/v1/vendors/search",
    response_model=SearchResults,
    responses=errors(),
    summary="Search vendors by name/description, near a point, open now",
)
async def search_vendors(
    caller: CurrentUser,
    search: SearchDep,
    q: Annotated[str, Query(max_length=256, description="Text to look for (typo tolerant)")] = "",
    lat: Annotated[float | None, Query(ge=-90, le=90, allow_inf_nan=False)] = None,
    lng: Annotated[float | None, Query(ge=-180, le=180, allow_inf_nan=False)] = None,
    radius: Annotated[int | None, Query(ge=1, le=200_000, description="Meters around lat,lng")] = None,
    open: Annotated[bool | None, Query(description="Only open (true) or closed (false) vendors")] = None,
    page: Annotated[int, Query(ge=0, le=1000)] = 0,
    limit: Annotated[int, Query(ge=1, le=100, description="Hits per page")] = 20,
) -> SearchResults:
    query = _query(q, lat, lng, radius, open, page, limit)
    try:
        found = await search.search(query)
    except SearchUnavailable as exc:
        raise Unavailable(f"search is unavailable: {exc}") from None
    return SearchResults(
        hits=[to_hit(doc, query.around) for doc in found.hits],
        total=found.total,
        page=found.page,
        pages=found.pages,
    )
