"""One dead letter as a record: what its headers say, which filters select it, and what its replay carries.

Pure (no I/O, no clock: `now` is passed in), so the rules an operator relies on are read in one place and tested
without a server: which type a dead letter counts as (its original subject, even a type the catalogue does not know),
the original message id (the `Venta-Original-Msg-Id` header, else the envelope's `messageId`), and the replay's
headers: the original's own minus the dead-letter ones, a new `Nats-Msg-Id` derived from the dead letter (the same
for every replay of it, so a repeated replay is de-duplicated by the stream) and `Venta-Replayed-From`. The stream
operations are in `deadletters`.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from nats.js.api import RawStreamMsg

from services.kit.events.bus import EVENT_TYPE_HEADER, MSG_ID_HEADER
from services.kit.events.consuming import (
    CONSUMER_HEADER,
    DEAD_LETTER_HEADERS,
    DEADLETTER_PREFIX,
    DELIVERIES_HEADER,
    DETAIL_HEADER,
    ORIGINAL_ID_HEADER,
    ORIGINAL_SEQUENCE_HEADER,
    ORIGINAL_SUBJECT_HEADER,
    REASON_HEADER,
)
from services.kit.events.envelope import SUBJECT_PREFIX

REPLAYED_FROM_HEADER = "Venta-Replayed-From"
# The reasons the consumer itself gives (envelope.decode, Catalog.parse, the delivery limit); handlers add their own
# with `Poison(reason, ...)`, which are known once a dead letter carries them.
BUILTIN_REASONS = frozenset(
    [
        "bad_json",
        "bad_envelope",
        "subject_mismatch",
        "unknown_type",
        "unsupported_version",
        "bad_data",
        "max_deliveries",
    ]
)
_REPLAY_IDS = uuid.UUID("6f1d3c52-8a0e-4c4b-9a57-3f0d6f2b9e11")  # the namespace of derived replay message ids


class BadSelection(ValueError):
    """The filters select nothing that can exist: an unknown reason, type or consumer, an empty time window."""


@dataclass(frozen=True)
class DeadLetter:
    """One message of the dead-letter stream: the original's bytes and headers plus why and where it failed."""

    sequence: int
    subject: str
    dead_lettered_at: datetime
    headers: Mapping[str, str]
    payload: bytes

    @classmethod
    def from_raw(cls, raw: RawStreamMsg) -> DeadLetter:
        return cls(
            sequence=int(raw.seq or 0),
            subject=raw.subject or "",
            dead_lettered_at=raw.time or datetime.fromtimestamp(0, UTC),
            headers={k: v for k, v in (raw.headers or {}).items() if isinstance(v, str)},
            payload=raw.data or b"",
        )

    @property
    def reason(self) -> str:
        return self.headers.get(REASON_HEADER, "")

    @property
    def detail(self) -> str:
        return self.headers.get(DETAIL_HEADER, "")

    @property
    def consumer(self) -> str:
        return self.headers.get(CONSUMER_HEADER, "")

    @property
    def original_subject(self) -> str:
        return self.headers.get(ORIGINAL_SUBJECT_HEADER, "")

    @property
    def original_sequence(self) -> int | None:
        return _integer(self.headers.get(ORIGINAL_SEQUENCE_HEADER))

    @property
    def deliveries(self) -> int | None:
        return _integer(self.headers.get(DELIVERIES_HEADER))

    @property
    def event_type(self) -> str:
        """The type it was published as (its subject), even when the catalogue does not know it."""
        if self.original_subject.startswith(SUBJECT_PREFIX):
            return self.original_subject.removeprefix(SUBJECT_PREFIX)
        return self.headers.get(EVENT_TYPE_HEADER) or self.subject.removeprefix(DEADLETTER_PREFIX + SUBJECT_PREFIX)

    @property
    def message_id(self) -> str | None:
        """The original's `Nats-Msg-Id`; for a dead letter older than that header, the envelope's `messageId`."""
        if kept := self.headers.get(ORIGINAL_ID_HEADER):
            return kept
        with contextlib.suppress(ValueError):
            document = json.loads(self.payload)
            if isinstance(document, dict) and isinstance(document.get("messageId"), str):
                return str(document["messageId"])
        return None

    @property
    def replayed_from(self) -> str | None:
        """Set when this dead letter is a replay that failed again: the id the event was first published with."""
        return self.headers.get(REPLAYED_FROM_HEADER)

    @property
    def replayable(self) -> bool:
        return self.original_subject.startswith(SUBJECT_PREFIX)

    def age(self, now: datetime) -> timedelta:
        return now - self.dead_lettered_at


def _integer(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def replay_message_id(letter: DeadLetter, stream: str) -> str:
    """The `Nats-Msg-Id` of a replay: new (never the original's) and the same for every replay of this dead letter."""
    return str(uuid.uuid5(_REPLAY_IDS, f"{stream}:{letter.sequence}:{letter.dead_lettered_at.isoformat()}"))


def replayed_from(letter: DeadLetter, stream: str) -> str:
    """The id a replay names as its origin: the first original's (kept across repeated replays)."""
    return (
        letter.replayed_from
        or letter.message_id
        or letter.headers.get(MSG_ID_HEADER)  # undecodable and older than ORIGINAL_ID_HEADER: the dead letter's id
        or f"{stream}:{letter.sequence}"
    )


def replay_headers(letter: DeadLetter, stream: str) -> dict[str, str]:
    """The original's headers (type, trace context) without the dead-letter ones, with the replay's ids."""
    headers = {
        k: v for k, v in letter.headers.items() if k not in DEAD_LETTER_HEADERS and not k.lower().startswith("nats-")
    }
    headers[MSG_ID_HEADER] = replay_message_id(letter, stream)
    headers[REPLAYED_FROM_HEADER] = replayed_from(letter, stream)
    return headers


@dataclass(frozen=True)
class Filters:
    """Which dead letters: types (globs, `*` and `?`), reasons, consumers (any of each), and an age window."""

    types: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    consumers: tuple[str, ...] = ()
    older_than: timedelta | None = None
    newer_than: timedelta | None = None

    def __post_init__(self) -> None:
        if self.older_than is not None and self.newer_than is not None and self.older_than >= self.newer_than:
            raise BadSelection(
                f"older than {self.older_than} and newer than {self.newer_than} at once: no dead letter is both"
            )

    @property
    def empty(self) -> bool:
        return not (self.types or self.reasons or self.consumers or self.older_than or self.newer_than)

    def matches(self, letter: DeadLetter, now: datetime) -> bool:
        age = letter.age(now)
        return (
            (not self.types or any(fnmatch.fnmatchcase(letter.event_type, glob) for glob in self.types))
            and (not self.reasons or letter.reason in self.reasons)
            and (not self.consumers or letter.consumer in self.consumers)
            and (self.older_than is None or age > self.older_than)
            and (self.newer_than is None or age < self.newer_than)
        )
