"""Turning untrusted request fields into typed values, or an InvalidArgument that names the field.

Used by every servicer at its edge, before anything is written, so bad input never reaches the database.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from services.kit.errors import InvalidArgument

M = TypeVar("M", bound=BaseModel)

MAX_ID_LENGTH = 64


def parse_uuid(field: str, value: str) -> uuid.UUID:
    if not value:
        raise InvalidArgument(field, "is required")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidArgument(field, "is too long to be an id")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument(field, "must be a UUID") from None


def check_coordinates(field: str, lat: float, long: float) -> tuple[float, float]:
    if not math.isfinite(lat) or not -90.0 <= lat <= 90.0:
        raise InvalidArgument(f"{field}.lat", "must be a number between -90 and 90")
    if not math.isfinite(long) or not -180.0 <= long <= 180.0:
        raise InvalidArgument(f"{field}.long", "must be a number between -180 and 180")
    return lat, long


def validate(model: type[M], data: Mapping[str, Any], *, field_names: Mapping[str, str] | None = None) -> M:
    """`model.model_validate(data)`, with the first error reported under the caller's name for the field."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else model.__name__
        field = (field_names or {}).get(field, field)
        message = error["msg"]
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        raise InvalidArgument(field, message) from None
