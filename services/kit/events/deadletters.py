"""The dead-letter stream as an operator handles it: list with filters, show one, replay, purge.

Why it exists: a dead letter is an event whose effect did not happen. Once its cause is fixed (a consumer that knows
the new version, a repaired handler) it must go back to where it came from, and the rest must be thrown away, without
hand-written NATS CLI commands that lose headers or re-send the original `Nats-Msg-Id`, which the stream silently
drops as a duplicate within its window.

JetStream-specific on purpose, like `replay` (it refuses to run when `VENTA_EVENTS_PROVIDER` is `redis`): dead letters
are addressed by their sequence in `DEADLETTER`. A replay publishes the payload unchanged (the envelope and its
`messageId` stay the event's identity) to the original subject with the headers `deadletter_records.replay_headers`
gives it, and deletes the dead letter only after that publish is acknowledged. A crash in between leaves the dead letter
in place; replaying it again publishes the same derived message id, which the stream de-duplicates within its window:
nothing is lost, nothing is handled twice in that window, and later a second delivery is what at-least-once consumers
already absorb.

What it must never do: configure the streams (a tool would impose its own settings on the platform's), or change
anything before every selected dead letter has been read (a bad selection changes nothing).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import re
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from nats.errors import Error as NatsError
from nats.js.api import StreamInfo
from nats.js.errors import BadRequestError, NotFoundError

from services.kit.events.bus import MSG_ID_HEADER
from services.kit.events.catalog import Catalog
from services.kit.events.consuming import DEADLETTER_PREFIX
from services.kit.events.deadletter_records import (
    BUILTIN_REASONS,
    REPLAYED_FROM_HEADER,
    BadSelection,
    DeadLetter,
    Filters,
    replay_headers,
)
from services.kit.events.factory import require_jetstream
from services.kit.events.jetstream import JetStreamBus
from services.kit.events.settings import EventSettings

EVERY_DEAD_LETTER = f"{DEADLETTER_PREFIX}>"
_CREDENTIALS = re.compile(r"//[^/@,]*@")
SEQUENCE_NOT_FOUND = 10043  # JetStream's error code for deleting a message that is not (any more) there


class DeadLetterError(Exception):
    """The dead letters could not be read or changed (NATS unreachable, no such stream or dead letter)."""


class NoSuchDeadLetter(DeadLetterError):
    def __init__(self, stream: str, missing: Sequence[int]) -> None:
        listed = ", ".join(str(s) for s in missing)
        super().__init__(f"no dead letter {listed} in {stream} (`venta deadletters list` shows what there is)")
        self.missing = list(missing)


@dataclass(frozen=True)
class Selection:
    letters: list[DeadLetter]  # in stream order, at most the limit
    matched: int  # before the limit
    total: int  # in the stream


@dataclass(frozen=True)
class Replayed:
    sequence: int  # of the dead letter
    subject: str
    message_id: str
    replayed_from: str
    event_sequence: int  # in the events stream (the first one's, when de-duplicated)
    duplicate: bool  # the stream had it already: an earlier replay of this dead letter was interrupted
    deleted: bool


@dataclass
class Report:
    """What a replay or purge did, in order, and the error that stopped it (nothing after it was tried)."""

    replayed: list[Replayed] = field(default_factory=list)
    purged: list[int] = field(default_factory=list)
    error: str | None = None


@contextlib.contextmanager
def _nats(doing: str) -> Iterator[None]:
    """The library's errors, converted once where they enter: one line saying what failed."""
    try:
        yield
    except (NatsError, TimeoutError, OSError) as exc:
        raise DeadLetterError(f"{doing}: {str(exc) or type(exc).__name__}") from exc


def _public(url: str) -> str:
    """The URL(s) without credentials, for messages."""
    return _CREDENTIALS.sub("//***@", url)


class DeadLetterStream:
    """The dead-letter stream of a connected bus; every read and change is by stream sequence."""

    def __init__(self, bus: JetStreamBus) -> None:
        self.bus = bus
        self.stream = bus.settings.deadletter_stream

    async def info(self) -> StreamInfo:
        try:
            with _nats(f"reading stream {self.stream}"):
                return await self.bus.js.stream_info(self.stream)
        except DeadLetterError as exc:
            if isinstance(exc.__cause__, NotFoundError):
                raise DeadLetterError(
                    f"stream {self.stream} does not exist at {_public(self.bus.settings.nats_url)}: no service has "
                    "connected to this NATS yet, or VENTA_DEADLETTER_STREAM names another stream"
                ) from exc
            raise

    async def scan(self) -> AsyncIterator[DeadLetter]:
        """Every dead letter in stream order, up to the last one stored when the scan began (one request each)."""
        state = (await self.info()).state
        sequence, last = state.first_seq, state.last_seq
        while state.messages and sequence <= last:
            try:
                with _nats(f"reading {self.stream}"):
                    raw = await self.bus.js.get_msg(self.stream, seq=sequence, subject=EVERY_DEAD_LETTER, next=True)
            except DeadLetterError as exc:
                if isinstance(exc.__cause__, NotFoundError):
                    return  # the rest was deleted meanwhile
                raise
            letter = DeadLetter.from_raw(raw)
            if letter.sequence > last:
                return
            yield letter
            sequence = letter.sequence + 1

    async def select(self, filters: Filters, *, limit: int | None = None, now: datetime | None = None) -> Selection:
        """The dead letters matching `filters`, oldest first; a filter value nothing could match is refused."""
        now = now or datetime.now(UTC)
        seen: dict[str, set[str]] = {"type": set(), "reason": set(), "consumer": set()}
        matching: list[DeadLetter] = []
        total = 0
        async for letter in self.scan():
            total += 1
            seen["type"].add(letter.event_type)
            seen["reason"].add(letter.reason)
            seen["consumer"].add(letter.consumer)
            if filters.matches(letter, now):
                matching.append(letter)
        await self._refuse_unknown(filters, seen)
        return Selection(letters=matching[:limit] if limit else matching, matched=len(matching), total=total)

    async def _refuse_unknown(self, filters: Filters, seen: dict[str, set[str]]) -> None:
        """A typo (`max_delivery`, `serch-sync`) would select nothing silently: name what is known instead."""
        known = {
            "type": seen["type"] | set(self.bus.catalog),
            "reason": seen["reason"] | BUILTIN_REASONS,
            "consumer": seen["consumer"] | (await self._consumers() if filters.consumers else set()),
        }
        for kind, wanted in (("type", filters.types), ("reason", filters.reasons), ("consumer", filters.consumers)):
            names = sorted(name for name in known[kind] if name)
            for value in wanted:
                found = fnmatch.filter(names, value) if kind == "type" else value in names
                if not found:
                    raise BadSelection(
                        f"unknown {kind} {value!r}: no dead letter has it and the platform does not know it "
                        f"(known: {', '.join(names) or 'none'})"
                    )

    async def _consumers(self) -> set[str]:
        try:
            with _nats("listing the consumers"):
                infos = await self.bus.js.consumers_info(self.bus.settings.events_stream)
        except DeadLetterError as exc:
            if isinstance(exc.__cause__, NotFoundError):
                return set()
            raise
        return {info.name for info in infos}

    async def get(self, sequences: Iterable[int]) -> list[DeadLetter]:
        """These dead letters in stream order; if any is missing, an error naming every missing one."""
        wanted = sorted(set(sequences))
        await self.info()
        found, missing = [], []
        for sequence in wanted:
            try:
                with _nats(f"reading dead letter {sequence}"):
                    found.append(DeadLetter.from_raw(await self.bus.js.get_msg(self.stream, sequence)))
            except DeadLetterError as exc:
                if not isinstance(exc.__cause__, NotFoundError):
                    raise
                missing.append(sequence)
        if missing:
            raise NoSuchDeadLetter(self.stream, missing)
        return found

    async def replay(self, letters: Sequence[DeadLetter]) -> Report:
        """Publish each to its original subject and wait for the ack, then delete it; stop at the first failure."""
        refused = [letter.sequence for letter in letters if not letter.replayable]
        if refused:
            raise DeadLetterError(
                f"dead letter {', '.join(map(str, refused))} has no original `events.` subject to go back to "
                "(purge it instead)"
            )
        report = Report()
        for letter in letters:
            subject, headers = letter.original_subject, replay_headers(letter, self.stream)
            try:
                with _nats(f"replaying dead letter {letter.sequence} to {subject}"):
                    published = await self.bus.publish_raw(
                        subject, letter.payload, headers, event_type=letter.event_type
                    )
            except DeadLetterError as exc:
                report.error = f"{exc}; it is still a dead letter"
                return report
            replayed = Replayed(
                sequence=letter.sequence,
                subject=subject,
                message_id=headers[MSG_ID_HEADER],
                replayed_from=headers[REPLAYED_FROM_HEADER],
                event_sequence=published.sequence,
                duplicate=published.duplicate,
                deleted=False,
            )
            try:
                await self._delete(letter.sequence)
            except DeadLetterError as exc:
                report.replayed.append(replayed)
                report.error = (
                    f"dead letter {letter.sequence} was replayed but not deleted ({exc}); replaying it again is "
                    "de-duplicated by the events stream within its window"
                )
                return report
            report.replayed.append(dataclasses.replace(replayed, deleted=True))
        return report

    async def purge(self, letters: Sequence[DeadLetter]) -> Report:
        """Delete each by sequence (one already gone counts as deleted); stop at the first failure."""
        report = Report()
        for letter in letters:
            try:
                await self._delete(letter.sequence)
            except DeadLetterError as exc:
                report.error = str(exc)
                return report
            report.purged.append(letter.sequence)
        return report

    async def _delete(self, sequence: int) -> None:
        try:
            with _nats(f"deleting dead letter {sequence}"):
                await self.bus.js.delete_msg(self.stream, sequence)
        except DeadLetterError as exc:
            cause = exc.__cause__
            if not (isinstance(cause, BadRequestError) and cause.err_code == SEQUENCE_NOT_FOUND):
                raise  # "sequence not found" is not an error here: already gone was the goal


@contextlib.asynccontextmanager
async def open_dead_letters(
    settings: EventSettings, catalog: Catalog, *, client_name: str
) -> AsyncIterator[DeadLetterStream]:
    """Connect without touching the streams' configuration; an error in one line if NATS or the stream is missing.

    Refuses (`ConfigError`) when the platform's events are not on JetStream (`VENTA_EVENTS_PROVIDER=redis`).
    """
    require_jetstream(settings, tool="venta deadletters", why="it works on the DEADLETTER stream by sequence")
    bus = JetStreamBus(settings, catalog, client_name=client_name)
    try:
        await bus.connect(configure_streams=False)
    except (NatsError, TimeoutError, OSError) as exc:
        why = f"no answer within {settings.events_publish_timeout_s:g}s" if isinstance(exc, TimeoutError) else exc
        raise DeadLetterError(f"cannot reach NATS at {_public(settings.nats_url)} ({why})") from exc
    try:
        stream = DeadLetterStream(bus)
        await stream.info()
        yield stream
    finally:
        await bus.close()
