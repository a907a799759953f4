"""The payloads clients send, as pydantic models: a payload is checked whole before anything is called.

Numbers must be JSON numbers (a string "12.5" is refused, not coerced), coordinates finite and in range, ids UUIDs.
A refusal names the field the way the client spelled it (`neLocation.lat`), so a mobile developer can fix the call
from the `error` event alone.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.websocket.errors import ErrorCode, SocketError

M = TypeVar("M", bound=BaseModel)


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError("must be a UUID") from None


Id = Annotated[str, Field(strict=True, min_length=1, max_length=64), AfterValidator(_uuid)]
Latitude = Annotated[float, Field(strict=True, ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(strict=True, ge=-180, le=180, allow_inf_nan=False)]


class Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Coordinates(Payload):
    lat: Latitude
    long: Longitude


class RegisterUser(Payload):
    user_id: Id = Field(alias="userId")


class RegisterVendor(Payload):
    vendor_id: Id = Field(alias="vendorId")


class Viewport(Payload):
    """`updateUserLocation`: the map's north-east and south-west corners (east < west crosses the antimeridian)."""

    ne_location: Coordinates = Field(alias="neLocation")
    sw_location: Coordinates = Field(alias="swLocation")

    @model_validator(mode="after")
    def _south_below_north(self) -> Viewport:
        if self.sw_location.lat > self.ne_location.lat:
            raise ValueError("swLocation.lat must not be north of neLocation.lat")
        return self


class VendorLocation(Coordinates):
    """`updateVendorLocation`."""

    vendor_id: Id = Field(alias="vendorId")


class VendorOpen(Payload):
    """`setVendorOpen`: the owner opens or closes the vendor (a JSON boolean, not "true")."""

    vendor_id: Id = Field(alias="vendorId")
    open: bool = Field(strict=True)


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"]) or "payload"
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def parse(model: type[M], data: Any, *, max_bytes: int) -> M:
    """`data` as `model`, or a SocketError (INVALID_PAYLOAD / PAYLOAD_TOO_LARGE) naming what is wrong."""
    if not isinstance(data, dict):
        raise SocketError(ErrorCode.INVALID_PAYLOAD, f"payload must be a JSON object, not {_json_type(data)}")
    try:
        size = len(json.dumps(data, separators=(",", ":")))
    except (TypeError, ValueError):
        raise SocketError(ErrorCode.INVALID_PAYLOAD, "payload must be plain JSON") from None
    if size > max_bytes:
        raise SocketError(ErrorCode.PAYLOAD_TOO_LARGE, f"payload is {size} bytes; at most {max_bytes} are accepted")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SocketError(ErrorCode.INVALID_PAYLOAD, _describe(exc)) from None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", list: "an array", int: "a number", float: "a number"}.get(
        type(value), "binary data"
    )
