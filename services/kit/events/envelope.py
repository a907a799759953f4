"""The envelope every event travels in (SPEC section 5) and the subject it is published on.

`{type, data, timestamp, messageId, correlationId?, version}` on subject `events.<type>`. `version` is the version
of the `data` schema (see `catalog`), so a consumer can refuse a version it does not understand instead of
misreading it. Decoding never raises a bare exception: a message that cannot be read is an `UndecodableEvent` with
a short machine-readable reason, which the consumer uses to dead-letter it.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

SUBJECT_PREFIX = "events."
TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


class CamelModel(BaseModel):
    """Fields in snake_case in Python, camelCase on the wire (the names the original clients read)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


class Envelope(CamelModel):
    type: str = Field(pattern=TYPE_PATTERN.pattern, max_length=128)
    data: dict[str, Any]
    timestamp: datetime
    message_id: str = Field(min_length=1, max_length=128)
    correlation_id: str | None = Field(default=None, max_length=128)
    version: int = Field(ge=1)

    @property
    def subject(self) -> str:
        return subject_for(self.type)

    def encode(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()


class UndecodableEvent(Exception):
    """A message that can never be processed; `reason` is one of a small fixed set (it labels metrics)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def subject_for(event_type: str) -> str:
    return SUBJECT_PREFIX + event_type


def new_envelope(event_type: str, data: BaseModel, *, version: int, correlation_id: str | None = None) -> Envelope:
    """A fresh envelope; the message id is random, so a re-publish of *this* envelope is de-duplicated."""
    return Envelope(
        type=event_type,
        data=data.model_dump(mode="json", by_alias=True),
        timestamp=datetime.now(UTC),
        message_id=str(uuid.uuid4()),
        correlation_id=correlation_id,
        version=version,
    )


def decode(raw: bytes, subject: str | None = None) -> Envelope:
    """Parse and check an envelope; raise UndecodableEvent("bad_json" | "bad_envelope" | "subject_mismatch")."""
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UndecodableEvent("bad_json", str(exc)[:200]) from None
    if not isinstance(document, dict):
        raise UndecodableEvent("bad_envelope", "the payload is not a JSON object")
    try:
        envelope = Envelope.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "envelope"
        raise UndecodableEvent("bad_envelope", f"{where}: {error['msg']}") from None
    if subject is not None and subject != envelope.subject:
        raise UndecodableEvent("subject_mismatch", f"type {envelope.type} published on {subject}")
    return envelope
