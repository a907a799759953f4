"""`venta deadletters list | show | replay | purge`: the dead-letter stream from a terminal or a script.

What the runbook uses instead of hand-written NATS CLI commands (docs/runbooks.md, VentaEventsDeadLettered). The kit
does the work (`services.kit.events.deadletters`); this module parses the command line, prints a table (or JSON with
`--json`), and turns every failure into one line and an exit code: 2 for a bad command line, selection or
configuration, 1 when NATS, the stream or a dead letter is not there; never a traceback. `replay` and `purge` only
show what they would do unless given `--yes`; a refused command has changed nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import re
import sys
import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from services.event_catalog import CATALOG
from services.kit.config import load_settings
from services.kit.events.deadletter_records import BadSelection, DeadLetter, Filters
from services.kit.events.deadletters import DeadLetterError, DeadLetterStream, Report, open_dead_letters
from services.kit.events.settings import EventSettings

CLIENT_NAME = "venta-deadletters"
LIST_LIMIT = 100
DETAIL_WIDTH = 60
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 604_800.0}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_TYPE_GLOB = re.compile(r"[a-z0-9_*?][a-z0-9_.*?]{0,127}")
_REASON = re.compile(r"[a-z][a-z0-9_]{0,63}")
_CONSUMER = re.compile(r"[A-Za-z0-9_-]{1,64}")
_LONGEST_S = 100 * 365 * 86_400.0
_LARGEST = 2**63 - 1  # a stream sequence is a 64-bit number


class UsageError(Exception):
    """The arguments are well-formed one by one but do not make a command together."""


# ---- argument types: each refuses garbage with one line naming what it expected ----------------------------------
def duration(text: str) -> timedelta:
    if not _DURATION.fullmatch(text):
        raise argparse.ArgumentTypeError(f"expected a duration like 90s, 30m, 1h, 2d or 1h30m, got {text!r}")
    seconds = sum(float(number) * _UNITS[unit] for number, unit in _DURATION_PART.findall(text))
    if not 0 < seconds <= _LONGEST_S:
        raise argparse.ArgumentTypeError(f"expected a duration longer than zero and under 100 years, got {text!r}")
    return timedelta(seconds=seconds)


def type_glob(text: str) -> str:
    if not _TYPE_GLOB.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"expected an event type like vendor.updated or a glob like 'vendor.*' (lowercase, digits, _ . * ?), "
            f"got {text!r}"
        )
    return text


def reason(text: str) -> str:
    if not _REASON.fullmatch(text):
        raise argparse.ArgumentTypeError(f"expected a reason like max_deliveries or bad_data, got {text!r}")
    return text


def consumer(text: str) -> str:
    if not _CONSUMER.fullmatch(text):
        raise argparse.ArgumentTypeError(f"expected a consumer name like search-sync, got {text!r}")
    return text


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= _LARGEST:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {_LARGEST}, got {text!r}")
    return value


def add_commands(deadletters: argparse.ArgumentParser) -> None:
    """`venta deadletters ...`: the four actions and their options."""
    actions = deadletters.add_subparsers(dest="action", required=True, metavar="{list,show,replay,purge}")
    filters = argparse.ArgumentParser(add_help=False)
    group = filters.add_argument_group("filters (each may be repeated: any value matches)")
    group.add_argument(
        "--type",
        dest="types",
        action="append",
        type=type_glob,
        default=[],
        metavar="TYPE",
        help="event type, or a glob of types ('vendor.*')",
    )
    group.add_argument(
        "--reason",
        dest="reasons",
        action="append",
        type=reason,
        default=[],
        metavar="REASON",
        help="max_deliveries, bad_data, bad_json, unknown_type, ... or a handler's Poison reason",
    )
    group.add_argument(
        "--consumer",
        dest="consumers",
        action="append",
        type=consumer,
        default=[],
        metavar="CONSUMER",
        help="the durable consumer that gave up (search-sync, ...)",
    )
    group.add_argument("--older-than", type=duration, metavar="AGE", help="dead-lettered longer ago than 1h, 2d, ...")
    group.add_argument("--newer-than", type=duration, metavar="AGE", help="dead-lettered within the last 30m, ...")
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="print JSON (for scripts) instead of a table")

    listing = actions.add_parser("list", parents=[filters, output], help="dead letters, oldest first")
    listing.add_argument(
        "--limit", type=positive, default=LIST_LIMIT, metavar="N", help=f"show at most this many ({LIST_LIMIT})"
    )
    show = actions.add_parser("show", parents=[output], help="one dead letter: why, where from, headers, payload")
    show.add_argument("sequence", type=positive, metavar="SEQ", help="its sequence in the dead-letter stream")
    for name, does in (
        ("replay", "publish to the original subject with a new message id, then delete the dead letter"),
        ("purge", "delete dead letters"),
    ):
        action = actions.add_parser(name, parents=[filters, output], help=does, description=does)
        action.add_argument("sequences", nargs="*", type=positive, metavar="SEQ", help="these dead letters")
        action.add_argument("--all", action="store_true", help="every dead letter (when no SEQ or filter is given)")
        action.add_argument("--limit", type=positive, metavar="N", help="at most this many, oldest first")
        action.add_argument("--yes", action="store_true", help=f"{name} (without it: show what would be done)")


# ---- running ------------------------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    """Exit code: 0 done, 1 NATS/stream/dead letter trouble, 2 bad usage (a bad VENTA_* raises ConfigError)."""
    settings = load_settings(EventSettings)
    logging.getLogger("venta.events").setLevel(logging.CRITICAL)  # reconnect chatter; failures are reported below
    try:
        filters = Filters(
            types=tuple(getattr(args, "types", ())),
            reasons=tuple(getattr(args, "reasons", ())),
            consumers=tuple(getattr(args, "consumers", ())),
            older_than=getattr(args, "older_than", None),
            newer_than=getattr(args, "newer_than", None),
        )
        _check_selection(args, filters)
        return asyncio.run(_run(settings, args, filters))
    except (UsageError, BadSelection) as exc:
        print(f"venta deadletters {args.action}: {exc}", file=sys.stderr)
        return 2
    except DeadLetterError as exc:
        print(f"venta deadletters {args.action}: {exc}", file=sys.stderr)
        return 1


def _check_selection(args: argparse.Namespace, filters: Filters) -> None:
    if args.action not in ("replay", "purge"):
        return
    if args.sequences and (not filters.empty or args.all or args.limit):
        raise UsageError("give dead letters by SEQ or by filters (--all, --limit), not both")
    if args.all and not filters.empty:
        raise UsageError("--all selects every dead letter: drop it, or drop the filters")
    if not (args.sequences or args.all or not filters.empty):
        raise UsageError(
            "which dead letters? give SEQ..., a filter (--type, --reason, --consumer, --older-than, --newer-than) "
            "or --all"
        )


async def _run(settings: EventSettings, args: argparse.Namespace, filters: Filters) -> int:
    async with open_dead_letters(settings, CATALOG, client_name=CLIENT_NAME) as dead:
        now = datetime.now(UTC)
        if args.action == "show":
            (letter,) = await dead.get([args.sequence])
            if args.json:
                _print_json(_full(letter, now))
            else:
                print(_details(letter, now))
            return 0
        if args.action != "list":
            if args.sequences:
                letters = await dead.get(args.sequences)
            else:
                letters = (await dead.select(filters, limit=args.limit, now=now)).letters
            return await _act(dead, args, letters, now)
        found = await dead.select(filters, limit=args.limit, now=now)
        if args.json:
            summaries = [_summary(letter, now) for letter in found.letters]
            _print_json(
                {"stream": dead.stream, "total": found.total, "matched": found.matched, "deadLetters": summaries}
            )
        else:
            print(_table(found.letters, now))
            shown = f" (the oldest {len(found.letters)} shown: --limit)" if len(found.letters) < found.matched else ""
            print(f"{found.matched} of {found.total} dead letters in {dead.stream} match{shown}")
        return 0


async def _act(dead: DeadLetterStream, args: argparse.Namespace, letters: list[DeadLetter], now: datetime) -> int:
    verb = args.action
    if not args.yes or not letters:
        if args.json:
            _print_json({"dryRun": True, "selected": [_summary(letter, now) for letter in letters]})
        elif letters:
            print(_table(letters, now))
            print(f"dry run: would {verb} {len(letters)} dead letter(s); add --yes to do it")
        else:
            print(f"nothing to {verb}")
        return 0
    report = await (dead.replay(letters) if verb == "replay" else dead.purge(letters))
    _print_report(report, verb, args.json)
    if report.error:
        print(f"venta deadletters {verb}: {report.error}", file=sys.stderr)
        return 1
    return 0


# ---- output -------------------------------------------------------------------------------------------------------
def _print_json(document: Any) -> None:
    print(json.dumps(document, indent=2, ensure_ascii=False))


def _print_report(report: Report, verb: str, as_json: bool) -> None:
    if as_json:
        done: list[Any] = report.purged
        if verb == "replay":
            done = [
                {
                    "sequence": r.sequence,
                    "subject": r.subject,
                    "messageId": r.message_id,
                    "replayedFrom": r.replayed_from,
                    "eventSequence": r.event_sequence,
                    "duplicate": r.duplicate,
                    "deleted": r.deleted,
                }
                for r in report.replayed
            ]
        _print_json({"dryRun": False, "replayed" if verb == "replay" else "purged": done, "error": report.error})
        return
    for r in report.replayed:
        how = "already there, de-duplicated" if r.duplicate else f"events sequence {r.event_sequence}"
        gone = "" if r.deleted else "; NOT deleted"
        print(f"replayed {r.sequence} -> {r.subject} (message id {r.message_id}, {how}){gone}")
    if verb == "replay":
        print(f"replayed {sum(r.deleted for r in report.replayed)} dead letter(s)")
    else:
        listed = ", ".join(str(sequence) for sequence in report.purged)
        print(f"purged {len(report.purged)} dead letter(s)" + (f": {listed}" if listed else ""))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _age(age: timedelta) -> str:
    seconds = max(0, int(age.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def _summary(letter: DeadLetter, now: datetime) -> dict[str, Any]:
    return {
        "sequence": letter.sequence,
        "deadLetteredAt": _iso(letter.dead_lettered_at),
        "ageSeconds": round(letter.age(now).total_seconds(), 3),
        "type": letter.event_type,
        "reason": letter.reason,
        "detail": letter.detail,
        "consumer": letter.consumer,
        "originalSubject": letter.original_subject,
        "originalSequence": letter.original_sequence,
        "deliveries": letter.deliveries,
        "messageId": letter.message_id,
        "replayedFrom": letter.replayed_from,
    }


def _full(letter: DeadLetter, now: datetime) -> dict[str, Any]:
    try:
        text: str | None = letter.payload.decode()
    except UnicodeDecodeError:
        text = None
    return {
        **_summary(letter, now),
        "subject": letter.subject,
        "headers": dict(letter.headers),
        "payload": text,
        "payloadBase64": base64.b64encode(letter.payload).decode(),
    }


def _table(letters: Sequence[DeadLetter], now: datetime) -> str:
    header = ("SEQ", "AGE", "TYPE", "REASON", "CONSUMER", "DELIVERIES", "DETAIL")
    rows = [
        (
            str(letter.sequence),
            _age(letter.age(now)),
            letter.event_type,
            letter.reason or "-",
            letter.consumer or "-",
            str(letter.deliveries or "-"),
            textwrap.shorten(letter.detail, DETAIL_WIDTH, placeholder="...") or "-",
        )
        for letter in letters
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in [header, *rows])
    return "\n".join(line.rstrip() for line in lines)


def _details(letter: DeadLetter, now: datetime) -> str:
    origin = letter.original_subject or "?"
    if letter.original_sequence is not None:
        origin += f", sequence {letter.original_sequence}"
    if letter.deliveries is not None:
        origin += f", {letter.deliveries} deliver{'y' if letter.deliveries == 1 else 'ies'}"
    fields = [
        ("dead letter", f"{letter.sequence} ({letter.subject})"),
        ("dead-lettered", f"{_iso(letter.dead_lettered_at)} ({_age(letter.age(now))} ago)"),
        ("type", letter.event_type),
        ("reason", letter.reason or "-"),
        ("detail", letter.detail or "-"),
        ("consumer", letter.consumer or "-"),
        ("original", origin),
        ("message id", letter.message_id or "-"),
        ("replayed from", letter.replayed_from or "-"),
    ]
    lines = [f"{name:<14} {value}" for name, value in fields]
    lines += ["headers", *(f"  {k}: {v}" for k, v in sorted(letter.headers.items())), "payload"]
    try:
        payload = json.dumps(json.loads(letter.payload), indent=2, ensure_ascii=False)
    except ValueError:
        payload = letter.payload.decode(errors="replace")
    lines += [textwrap.indent(payload, "  ")]
    return "\n".join(lines)
