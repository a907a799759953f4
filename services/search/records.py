"""The index record, the changes applied to it, and the one rule that merges a change into a stored document.

Record (SPEC section 7): the vendor's public fields, `objectID` = vendor id and `_geoloc {lat, lng}` as numbers
(the original used random object ids and stringified `_geoloc`). Stored documents carry three bookkeeping fields
besides: `syncVersion` (the vendor's `updatedAt` in microseconds, of the last full record applied),
`syncGeoVersion` (the same, for the position) and `syncDeleted` (a tombstone). Delivery is at least once and not
always in order, so `merge` applies a change only when it is newer than what is stored; a deletion leaves a
tombstone so that a late, older update cannot bring a vendor back. Every provider stores documents through `merge`,
which makes every provider idempotent and order-insensitive in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

VERSION = "syncVersion"
GEO_VERSION = "syncGeoVersion"
DELETED = "syncDeleted"
BOOKKEEPING = (VERSION, GEO_VERSION, DELETED)

Document = dict[str, Any]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def version_of(moment: datetime) -> int:
    """A timestamp as an integer version (microseconds since the epoch): exact, and a number every engine sorts."""
    return (moment - EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True)
class Upsert:
    """The whole record at `version` (`record` has the public fields; `_geoloc` absent when it has no position)."""

    record: Document
    version: int

    @property
    def object_id(self) -> str:
        return str(self.record["objectID"])


@dataclass(frozen=True)
class Remove:
    object_id: str
    version: int


@dataclass(frozen=True)
class MoveTo:
    object_id: str
    lat: float
    lng: float
    version: int


Change = Upsert | Remove | MoveTo


def iso_utc(value: datetime | str | None) -> str | None:
    """One spelling of a timestamp whatever its source (event JSON or protobuf string): ISO 8601 UTC with `Z`."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def record_from_vendor(vendor: dict[str, Any]) -> Document:
    """The index record for a vendor in its event/API shape (camelCase keys, `lat`/`long`; "" counts as absent)."""
    record: Document = {
        "objectID": str(vendor["id"]),
        "ownerId": vendor.get("ownerId") or None,
        "name": vendor["name"],
        "description": vendor.get("description") or None,
        "phone": vendor.get("phone") or None,
        "email": vendor.get("email") or None,
        "website": vendor.get("website") or None,
        "open": bool(vendor.get("open", False)),
        "primaryImage": vendor.get("primaryImage") or None,
        "createdAt": iso_utc(vendor.get("createdAt")),
        "updatedAt": iso_utc(vendor.get("updatedAt")),
    }
    lat, lng = vendor.get("lat"), vendor.get("long")
    if lat is not None and lng is not None:
        record["_geoloc"] = {"lat": float(lat), "lng": float(lng)}
    return record


def public(document: Document) -> Document:
    """The record a search returns: no bookkeeping fields."""
    return {key: value for key, value in document.items() if key not in BOOKKEEPING}


def _stamped(document: Document) -> Document:
    """`updatedAt` is the vendor's latest change, whether the last one was a full record or only its position."""
    if not document.get(DELETED) and document.get(GEO_VERSION, 0) > document.get(VERSION, 0):
        try:
            document["updatedAt"] = iso_utc(EPOCH + timedelta(microseconds=document[GEO_VERSION]))
        except OverflowError:
            pass  # a version that is no timestamp (a caller's "newest of all"): keep the record's own
    return document


def merge(current: Document | None, change: Change) -> Document | None:
    """The document after `change`, or None when the change is not newer than what is stored (nothing to write)."""
    merged = _merge(current, change)
    return None if merged is None else _stamped(merged)


def _merge(current: Document | None, change: Change) -> Document | None:
    if isinstance(change, Upsert):
        if current is not None and change.version <= current.get(VERSION, 0):
            return None
        document = {**change.record, VERSION: change.version, GEO_VERSION: change.version, DELETED: False}
        if current is not None and current.get(GEO_VERSION, 0) > change.version:
            document.pop("_geoloc", None)  # a newer position is already stored: keep it
            if "_geoloc" in current:
                document["_geoloc"] = current["_geoloc"]
            document[GEO_VERSION] = current[GEO_VERSION]
        return document
    if isinstance(change, Remove):
        if current is not None and change.version <= current.get(VERSION, 0):
            return None
        return {"objectID": change.object_id, VERSION: change.version, GEO_VERSION: change.version, DELETED: True}
    if current is not None and change.version <= current.get(GEO_VERSION, 0):
        return None
    base = current or {"objectID": change.object_id, VERSION: 0, DELETED: True}  # position before its vendor
    return {**base, "_geoloc": {"lat": float(change.lat), "lng": float(change.lng)}, GEO_VERSION: change.version}


def merge_all(current: dict[str, Document | None], changes: list[Change]) -> dict[str, Document]:
    """Apply `changes` in order over `current` (object id -> stored document); the documents to write."""
    state = dict(current)
    written: dict[str, Document] = {}
    for change in changes:
        merged = merge(state.get(change.object_id), change)
        if merged is not None:
            state[change.object_id] = merged
            written[change.object_id] = merged
    return written
