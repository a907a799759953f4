"""The events the vendor service publishes, built from the stored record (never from request input).

`vendor.created` / `vendor.updated` / `vendor.deleted` carry the whole record; `vendor.location.updated` carries the
new position. Each `updatedAt` (and the location event's `timestamp`) is the vendor's version: it strictly increases
with every change, so a consumer can ignore a redelivered older event.
"""

from __future__ import annotations

from services.event_catalog import Location, VendorData, VendorLocationData
from services.kit.db.session import Record
from services.vendors.models import Vendor

CREATED = "vendor.created"
UPDATED = "vendor.updated"
DELETED = "vendor.deleted"
LOCATION_UPDATED = "vendor.location.updated"


def vendor_data(vendor: Vendor | Record) -> VendorData:
    """From the ORM object (create, delete) or the row an UPDATE returned (update, open/close, position)."""
    return VendorData(
        id=str(vendor.id),
        owner_id=str(vendor.owner_id),
        name=vendor.name,
        description=vendor.description,
        phone=vendor.phone,
        email=vendor.email,
        website=vendor.website,
        open=vendor.open,
        primary_image=vendor.primary_image,
        lat=vendor.lat,
        long=vendor.long,
        created_at=vendor.created_at,
        updated_at=vendor.updated_at,
    )


def location_data(vendor: Vendor | Record) -> VendorLocationData:
    assert vendor.lat is not None and vendor.long is not None
    return VendorLocationData(
        vendor_id=str(vendor.id),
        location=Location(lat=vendor.lat, long=vendor.long),
        timestamp=vendor.updated_at,
    )
