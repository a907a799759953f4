"""A catalogue of event types: the versioned schema of each type's `data`, and where its snapshots are kept.

A schema is a pydantic model registered under `(type, version)`. Producers build `data` from the latest version;
consumers validate with the version the envelope names, and a version they do not know is a permanent failure
(dead-lettered), never a guess. The kit knows no event type: the platform's catalogue lives with the services that
own the events (`services.event_catalog`) and is handed to the bus, the outbox and the compatibility check.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from services.kit.events.envelope import CamelModel, Envelope, UndecodableEvent


@dataclass(frozen=True)
class Catalog:
    """Schemas per type and version; `snapshots` holds the committed JSON schemas (`<type>.v<N>.json`)."""

    schemas: Mapping[str, Mapping[int, type[CamelModel]]]
    snapshots: Path

    def __contains__(self, event_type: object) -> bool:
        return event_type in self.schemas

    def __iter__(self) -> Iterator[str]:
        return iter(self.schemas)

    def latest_version(self, event_type: str) -> int:
        return max(self.schemas[event_type])

    def parse(self, envelope: Envelope) -> CamelModel:
        """`data` as its schema; UndecodableEvent("unknown_type" | "unsupported_version" | "bad_data") otherwise."""
        versions = self.schemas.get(envelope.type)
        if versions is None:
            raise UndecodableEvent("unknown_type", f"no schema for event type {envelope.type!r}")
        model = versions.get(envelope.version)
        if model is None:
            raise UndecodableEvent(
                "unsupported_version", f"{envelope.type} v{envelope.version} (known: {sorted(versions)})"
            )
        try:
            return model.model_validate(envelope.data)
        except ValueError as exc:
            raise UndecodableEvent("bad_data", str(exc).splitlines()[0][:200]) from None
