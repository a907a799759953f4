"""Every event type has a versioned schema with a committed snapshot, and a backward-incompatible change fails."""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.event_catalog import CATALOG, VendorData
from services.kit.events.catalog import Catalog
from services.kit.events.compatibility import (
    breaking_changes,
    check_all,
    current_schema,
    snapshot_path,
    write_snapshots,
)
from services.kit.events.envelope import UndecodableEvent, decode, new_envelope

SPEC_TYPES = {
    "vendor.created",
    "vendor.updated",
    "vendor.deleted",
    "vendor.location.updated",
    "user.created",
    "user.deleted",
    "user.integration.created",
    "user.integration.deleted",
    "user.subscription.updated",
    "websocket.user.connected",
    "websocket.user.disconnected",
    "websocket.vendor.connected",
    "websocket.vendor.disconnected",
}


def test_every_spec_event_type_has_a_schema_and_a_snapshot() -> None:
    assert set(CATALOG) == SPEC_TYPES
    for event_type, versions in CATALOG.schemas.items():
        for version in versions:
            assert snapshot_path(CATALOG, event_type, version).exists(), "run python -m services.event_catalog"


def test_schemas_are_compatible_with_their_snapshots() -> None:
    assert check_all(CATALOG) == {}, "a committed event schema changed incompatibly: add a new version instead"


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


STRING = {"type": "string"}
OLD = _schema({"id": STRING, "name": STRING, "note": {"anyOf": [STRING, {"type": "null"}]}}, ["id", "name"])


@pytest.mark.parametrize(
    ("new", "problem"),
    [
        (_schema({"id": STRING, "note": STRING}, ["id"]), "required field 'name' removed or renamed"),
        (_schema({"id": STRING, "title": STRING, "note": STRING}, ["id", "title"]), "removed or renamed"),
        (_schema({"id": {"type": "integer"}, "name": STRING}, ["id", "name"]), "field 'id' changed type"),
        (_schema({"id": STRING, "name": STRING, "x": STRING}, ["id", "name", "x"]), "new required field 'x'"),
        (_schema({"id": STRING, "name": STRING}, ["id"]), "field 'name' is no longer required"),
        (_schema({"id": STRING, "name": {"anyOf": [STRING, {"type": "null"}]}}, ["id", "name"]), "changed type"),
    ],
)
def test_breaking_changes_are_detected(new: dict[str, Any], problem: str) -> None:
    assert any(problem in p for p in breaking_changes(OLD, new)), breaking_changes(OLD, new)


def test_compatible_changes_pass() -> None:
    added_optional = _schema({**OLD["properties"], "extra": STRING}, ["id", "name"])
    dropped_optional = _schema({"id": STRING, "name": STRING}, ["id", "name"])
    assert breaking_changes(OLD, added_optional) == []
    assert breaking_changes(OLD, dropped_optional) == []


def test_a_real_breaking_change_to_a_catalog_model_is_caught(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    shutil.copytree(CATALOG.snapshots, tmp_path / "schemas")

    class Renamed(VendorData):
        pass

    schema = current_schema(CATALOG, "vendor.created", 1)
    schema["properties"]["title"] = schema["properties"].pop("name")
    schema["required"] = ["title" if r == "name" else r for r in schema["required"]]
    monkeypatch.setattr(Renamed, "model_json_schema", classmethod(lambda cls, **_: schema))
    changed = Catalog({**CATALOG.schemas, "vendor.created": {1: Renamed}}, snapshots=tmp_path / "schemas")
    assert "required field 'name' removed or renamed" in check_all(changed)["vendor.created v1"]
    assert write_snapshots(changed) == 1, "the snapshot tool refuses to record a breaking change"
    assert "name" in json.loads(snapshot_path(changed, "vendor.created", 1).read_text())["properties"]


def test_envelope_round_trip_and_decoding_errors() -> None:
    data = VendorData(
        id=str(uuid.uuid4()), owner_id="o", name="n", created_at=datetime.now(UTC), updated_at=datetime.now(UTC)
    )
    envelope = new_envelope("vendor.created", data, version=1, correlation_id="req-1")
    wire = json.loads(envelope.encode())
    assert set(wire) == {"type", "data", "timestamp", "messageId", "correlationId", "version"}
    assert wire["data"]["ownerId"] == "o" and "updatedAt" in wire["data"]
    decoded = decode(envelope.encode(), "events.vendor.created")
    assert CATALOG.parse(decoded) == data
    for raw, subject, reason in [
        (b"\xff\xfe", None, "bad_json"),
        (b"[1]", None, "bad_envelope"),
        (envelope.encode(), "events.vendor.updated", "subject_mismatch"),
        (json.dumps({**wire, "type": "vendor.bought"}).encode(), None, "unknown_type"),
        (json.dumps({**wire, "version": 7}).encode(), None, "unsupported_version"),
        (json.dumps({**wire, "data": {"id": 1}}).encode(), None, "bad_data"),
    ]:
        with pytest.raises(UndecodableEvent) as caught:
            CATALOG.parse(decode(raw, subject))
        assert caught.value.reason == reason
