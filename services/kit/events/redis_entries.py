"""What an entry of a Venta Redis stream looks like, written once for the publisher and the consumer.

An entry has three fields: `subject` (`events.<type>` or `deadletter.events.<type>`), `data` (the envelope's bytes,
unchanged) and `headers` (a JSON object of strings: the message id, the type, the trace context, a dead letter's
reason). Anything else found in a stream (written by hand, by an older version, or garbage) is a `MalformedEntry`,
which the consumer dead-letters with reason `bad_entry` instead of failing on it. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

MAX_SEQUENCE_IN_MS = 1_000_000


class MalformedEntry(ValueError):
    """An entry that is not `subject` / `data` / `headers`; the message says what is wrong, in one line."""


@dataclass(frozen=True)
class Entry:
    subject: str
    data: bytes
    headers: dict[str, str]


def stream_key(stream: str) -> str:
    return f"venta:stream:{stream}"


def message_id_key(stream: str, message_id: str) -> str:
    return f"venta:msgid:{stream}:{message_id}"


def entry_sequence(entry_id: bytes | str) -> int:
    """`<ms>-<n>` as one increasing number, `ms * 1,000,000 + n` (Redis writes far fewer entries per millisecond)."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, n = text.partition("-")
    return int(ms) * MAX_SEQUENCE_IN_MS + int(n or 0)


def entry_fields(subject: str, payload: bytes, headers: Mapping[str, str]) -> list[bytes]:
    """The field/value list of an entry (`XADD`'s arguments after the id)."""
    return [b"subject", subject.encode(), b"data", payload, b"headers", json.dumps(dict(headers)).encode()]


def subject_of(fields: Mapping[bytes, bytes]) -> str | None:
    """The entry's subject, or None when it has none that can be read."""
    raw = fields.get(b"subject")
    if raw is None:
        return None
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return None


def parse_entry(fields: Mapping[bytes, bytes]) -> Entry:
    """The entry, or MalformedEntry saying which field is missing or unreadable."""
    subject = subject_of(fields)
    if subject is None:
        raise MalformedEntry("no readable `subject` field")
    data = fields.get(b"data")
    if data is None:
        raise MalformedEntry("no `data` field")
    raw_headers = fields.get(b"headers", b"{}")
    try:
        headers = json.loads(raw_headers)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedEntry(f"`headers` is not JSON ({str(exc)[:100]})") from None
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise MalformedEntry("`headers` is not a JSON object of strings")
    return Entry(subject=subject, data=data, headers=headers)


def as_fields(flat: list[bytes] | Mapping[bytes, bytes]) -> dict[bytes, bytes]:
    """Fields as redis-py answers them (a mapping) or as a script does (a flat list: field, value, ...)."""
    if isinstance(flat, Mapping):
        return dict(flat)
    return dict(zip(flat[::2], flat[1::2], strict=False))
