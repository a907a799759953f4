"""What the API returns and the socket pushes (camelCase JSON, the SPEC's style)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from sqlalchemy import Row


class View(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Notification(View):
    id: uuid.UUID
    kind: str = Field(description="VENDOR_OPENED, VENDOR_ONLINE, FIRST_FAVOURITE or SUBSCRIPTION_CHANGED")
    title: str
    body: str
    vendor_id: uuid.UUID | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    read_at: datetime | None = None


class NotificationPage(View):
    notifications: list[Notification]
    next_cursor: str | None = Field(description="pass as `cursor` for the next (older) page; null on the last page")


class UnreadCount(View):
    unread: int


class MarkedRead(View):
    marked: int


class Favourite(View):
    vendor_id: uuid.UUID
    name: str
    open: bool
    created_at: datetime


class Favourites(View):
    favourites: list[Favourite]


def notification_view(row: Row[Any]) -> Notification:
    return Notification(
        id=row.id,
        kind=row.kind,
        title=row.title,
        body=row.body,
        vendor_id=row.vendor_id,
        data=row.data or {},
        created_at=row.created_at,
        read_at=row.read_at,
    )


def favourite_view(row: Row[Any]) -> Favourite:
    return Favourite(vendor_id=row.vendor_id, name=row.name, open=row.open, created_at=row.created_at)
