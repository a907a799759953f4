"""Request and response bodies of the public API, as the mobile client knows them (camelCase JSON).

The gateway checks shapes, types and sizes; the rules of a vendor's fields (phone, email and URL formats) belong to
the vendor service, whose INVALID_ARGUMENT comes back as a 400 naming the field. Every string is checked to be
encodable as UTF-8 without NUL bytes: a lone surrogate in JSON must be a 400 here, not an encoding failure later.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


def _clean(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


SafeText = AfterValidator(_clean)
Name = Annotated[str, Field(min_length=1, max_length=100), SafeText]
Description = Annotated[str, Field(max_length=1000), SafeText]
Email = Annotated[str, Field(max_length=254), SafeText]
Phone = Annotated[str, Field(max_length=32), SafeText]
Url = Annotated[str, Field(max_length=2048), SafeText]


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Latitude = Annotated[float, Field(ge=-90, le=90), AfterValidator(_finite)]
Longitude = Annotated[float, Field(ge=-180, le=180), AfterValidator(_finite)]


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown request fields are ignored (older clients send some)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class VendorFields(ApiModel):
    description: Description | None = None
    email: Email | None = None
    phone: Phone | None = None
    website: Url | None = None
    image_url: Url | None = None


class VendorCreate(VendorFields):
    """`name` is required; every other field is optional."""

    name: Name


class VendorUpdate(VendorFields):
    """Only the fields present change; `null` (or an empty string) clears an optional field."""

    name: Name | None = None


class VendorPublic(ApiModel):
    id: str
    name: str
    description: str | None
    phone: str | None
    email: str | None
    website: str | None
    open: bool
    primary_image: str | None
    lat: float | None
    long: float | None
    owner_id: str
    created_at: str = Field(description="ISO 8601, UTC")
    updated_at: str = Field(description="ISO 8601, UTC")


class VendorOpenState(ApiModel):
    """`PUT /v1/vendors/{id}/open`: a JSON boolean (the string "true" is refused)."""

    open: bool = Field(strict=True)


class VendorCreated(ApiModel):
    id: str


class VendorChanged(ApiModel):
    message: str
    success: bool


class UserVendor(ApiModel):
    id: str
    name: str


class UserVendors(ApiModel):
    vendors: list[UserVendor]


class Location(ApiModel):
    lat: float
    long: float


class NearbyVendor(ApiModel):
    id: str
    location: Location


class NearbyVendors(ApiModel):
    vendors: list[NearbyVendor]


class SearchHit(ApiModel):
    id: str
    name: str
    description: str | None = None
    open: bool = False
    primary_image: str | None = None
    lat: float | None = None
    long: float | None = None
    distance_m: float | None = Field(default=None, description="From the query point, when one was given")


class SearchResults(ApiModel):
    hits: list[SearchHit]
    total: int = Field(description="Matches in the index (hits holds at most `limit` of them)")
    page: int
    pages: int


class UploadedImage(ApiModel):
    url: str
    public_id: str
    format: Literal["jpg", "png", "gif", "webp"]
    bytes: int


class WebhookAck(ApiModel):
    message: str
