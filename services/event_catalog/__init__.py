"""Every event type of the platform and the versioned schema of its `data` (SPEC section 5).

The services that own the events describe them here, in one place beside them, because producers and consumers are
different services (vendors publish what search sync and the gateway consume) and services never import each other.
The kit's bus, outbox and compatibility check take this catalogue as an argument; they know no event type.

Models ignore unknown fields, so adding an optional field is compatible; anything else that would break an older
consumer (removing, renaming or retyping a field, adding a required one) needs a new version.
`python -m services.event_catalog` refreshes the JSON-schema snapshots in `schemas/`, refusing a breaking change
(`services.kit.events.compatibility`); a test holds the rule.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path

from pydantic import Field

from services.kit.events.catalog import Catalog
from services.kit.events.envelope import CamelModel


class VendorData(CamelModel):
    """`vendor.created` / `vendor.updated` / `vendor.deleted`: the whole record (deleted: as it was last)."""

    id: str
    owner_id: str
    name: str
    description: str | None = None
    phone: str | None = None
    email: str | None = None
    website: str | None = None
    open: bool = False
    primary_image: str | None = None
    lat: float | None = None
    long: float | None = None
    created_at: datetime
    updated_at: datetime = Field(description="strictly increases with every change of the vendor: its version")


class Location(CamelModel):
    lat: float = Field(ge=-90, le=90)
    long: float = Field(ge=-180, le=180)


class VendorLocationData(CamelModel):
    """`vendor.location.updated`; `timestamp` is the vendor's new `updatedAt`, so it orders with the other events."""

    vendor_id: str
    location: Location
    timestamp: datetime


class UserData(CamelModel):
    """`user.created` / `user.deleted`."""

    clerk_id: str
    user_id: str
    timestamp: datetime


class IntegrationType(StrEnum):
    CLERK = "Clerk"
    REVENUECAT = "RevenueCat"


class UserIntegrationData(CamelModel):
    """`user.integration.created` / `user.integration.deleted`."""

    integration_id: str
    provider_id: str | None = None
    type: IntegrationType
    user_id: str
    timestamp: datetime


class SubscriptionStatus(StrEnum):
    ACTIVE = "Active"
    CANCELLED = "Cancelled"
    INACTIVE = "Inactive"
    PENDING = "Pending"
    BILLING_ISSUE = "BillingIssue"


class UserSubscriptionData(CamelModel):
    """`user.subscription.updated`: the subscription as one applied RevenueCat event left it.

    Events apply in the order of RevenueCat's own timestamp, so `timestamp` (that event's `event_timestamp_ms`)
    strictly increases per user: a consumer keeps the newest and ignores a redelivered older one.
    """

    user_id: str
    status: SubscriptionStatus
    product_id: str
    period_start: datetime | None = Field(default=None, description="start of the current period (purchase time)")
    period_end: datetime | None = Field(default=None, description="end of the paid period (entitled until then)")
    event_type: str = Field(description="the RevenueCat event type that made the change, e.g. RENEWAL")
    timestamp: datetime


class WebsocketUserData(CamelModel):
    """`websocket.user.connected` / `websocket.user.disconnected`."""

    user_id: str
    socket_id: str
    timestamp: datetime


class WebsocketVendorData(CamelModel):
    """`websocket.vendor.connected` / `websocket.vendor.disconnected` (+ the users who were watching)."""

    vendor_id: str
    socket_id: str
    timestamp: datetime
    affected_users: list[str] = Field(default_factory=list)


CATALOG = Catalog(
    {
        "vendor.created": {1: VendorData},
        "vendor.updated": {1: VendorData},
        "vendor.deleted": {1: VendorData},
        "vendor.location.updated": {1: VendorLocationData},
        "user.created": {1: UserData},
        "user.deleted": {1: UserData},
        "user.integration.created": {1: UserIntegrationData},
        "user.integration.deleted": {1: UserIntegrationData},
        "user.subscription.updated": {1: UserSubscriptionData},
        "websocket.user.connected": {1: WebsocketUserData},
        "websocket.user.disconnected": {1: WebsocketUserData},
        "websocket.vendor.connected": {1: WebsocketVendorData},
        "websocket.vendor.disconnected": {1: WebsocketVendorData},
    },
    snapshots=Path(__file__).parent / "schemas",
)
