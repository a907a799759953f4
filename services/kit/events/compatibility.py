"""The schema compatibility rule, checked against committed JSON-schema snapshots (`schemas/<type>.v<N>.json`).

Events outlive the code that wrote them (they wait in the stream, in dead letters, in replays), so a schema version,
once committed, may only change in ways every consumer of that version survives. For each field, old and new, a
change is breaking when it removes (or renames) a required field, makes a required field optional, changes a field's
type (including nullability and enum values), or adds a required field. Adding an optional field is fine.

`python -m services.event_catalog` rewrites the platform's snapshots (`write_snapshots`), refusing any breaking
change: write a new version in the catalogue instead.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.kit.events.catalog import Catalog


@dataclass(frozen=True)
class FieldShape:
    types: frozenset[str]
    required: bool


def current_schema(catalog: Catalog, event_type: str, version: int) -> dict[str, Any]:
    return catalog.schemas[event_type][version].model_json_schema(by_alias=True, mode="validation")


def snapshot_path(catalog: Catalog, event_type: str, version: int) -> Path:
    return catalog.snapshots / f"{event_type}.v{version}.json"


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = root.get("$defs", {})[name]
    return schema


def _types(schema: dict[str, Any], root: dict[str, Any]) -> frozenset[str]:
    schema = _resolve(schema, root)
    if "anyOf" in schema:
        return frozenset().union(*(_types(option, root) for option in schema["anyOf"]))
    if "enum" in schema:
        return frozenset(f"enum:{value}" for value in schema["enum"])
    kind = schema.get("type", "any")
    kinds = kind if isinstance(kind, list) else [kind]
    out = set()
    for k in kinds:
        if k == "array":
            items = sorted(_types(schema.get("items", {}), root))
            out.add(f"array<{'|'.join(items)}>")
        elif k == "string" and "format" in schema:
            out.add(f"string:{schema['format']}")
        else:
            out.add(k)
    return frozenset(out)


def fields(schema: dict[str, Any], root: dict[str, Any] | None = None, prefix: str = "") -> dict[str, FieldShape]:
    """Every field, nested objects flattened to dotted paths, with its accepted types and whether it is required."""
    root = root or schema
    schema = _resolve(schema, root)
    required = set(schema.get("required", []))
    out: dict[str, FieldShape] = {}
    for name, prop in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        resolved = _resolve(prop, root)
        out[path] = FieldShape(_types(prop, root), name in required)
        if resolved.get("type") == "object" and "properties" in resolved:
            out.update(fields(resolved, root, f"{path}."))
    return out


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Why a consumer of `old` (or a reader of old messages with `new`) would break; empty when compatible."""
    before, after = fields(old), fields(new)
    problems = []
    for path, was in before.items():
        now = after.get(path)
        if now is None:
            if was.required:
                problems.append(f"required field {path!r} removed or renamed")
            continue
        if was.required and not now.required:
            problems.append(f"field {path!r} is no longer required")
        if was.types != now.types:
            problems.append(f"field {path!r} changed type {sorted(was.types)} -> {sorted(now.types)}")
    for path, now in after.items():
        if path not in before and now.required:
            problems.append(f"new required field {path!r}")
    return problems


def check_all(catalog: Catalog) -> dict[str, list[str]]:
    """Problems per `type vN`: a missing snapshot, a breaking change, or a snapshot behind a compatible change."""
    report: dict[str, list[str]] = {}
    for event_type, versions in catalog.schemas.items():
        for version in versions:
            key = f"{event_type} v{version}"
            path = snapshot_path(catalog, event_type, version)
            new = current_schema(catalog, event_type, version)
            if not path.exists():
                report[key] = [f"no snapshot at {path.name}"]
                continue
            old = json.loads(path.read_text())
            problems = breaking_changes(old, new)
            if not problems and old != new:
                problems = ["compatible change not yet snapshotted"]
            if problems:
                report[key] = problems
    return report


def write_snapshots(catalog: Catalog) -> int:
    """Rewrite every snapshot; refuse (exit 1) when one would record a breaking change."""
    refused = 0
    catalog.snapshots.mkdir(exist_ok=True)
    for event_type, versions in catalog.schemas.items():
        for version in versions:
            path = snapshot_path(catalog, event_type, version)
            new = current_schema(catalog, event_type, version)
            if path.exists():
                problems = breaking_changes(json.loads(path.read_text()), new)
                if problems:
                    print(f"refusing {path.name}: {'; '.join(problems)}", file=sys.stderr)
                    refused += 1
                    continue
            path.write_text(json.dumps(new, indent=2, sort_keys=True) + "\n")
    return 1 if refused else 0
