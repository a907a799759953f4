"""`venta deadletters list | show | replay | purge` as an operator runs it (a real process) against a real JetStream,
on dead letters made by real durable consumers: filters, replay to the original subject with a new message id (and
the dead letter gone only once that publish is stored), purge, and garbage refused in one line, changing nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import nats as nats_py
import pytest

from services.devkit.servers import Nats, free_port
from services.event_catalog import CATALOG
from services.kit.events.deadletters import DeadLetterError, DeadLetterStream, open_dead_letters
from services.kit.events.settings import EventSettings
from tests.support.deadletters import (
    Handler,
    bus_on,
    dead_letter_headers,
    eventually,
    stream_messages,
    stream_names,
    user_event,
    vendor_event,
    venta_deadletters,
    wait_for_dead_letters,
)

GAP_S = 30.0  # between the old dead letters and the new one; the age filters split them at AGE
AGE = "20s"  # a `venta deadletters` process takes 1-2 s to start (10 s and more on a busy machine): the new one
# is younger than this when it looks


async def expect_listed(nats: Nats, cases: dict[tuple[str, ...], set[str]]) -> None:
    """`venta deadletters list --json ARGS` selects dead letters of these types, for each case."""
    runs = await asyncio.gather(*(venta_deadletters(nats.url, "list", "--json", *args) for args in cases))
    for (args, expected), ran in zip(cases.items(), runs, strict=True):
        assert ran.code == 0, ran
        assert {d["type"] for d in ran.json()["deadLetters"]} == expected, args


def no_such(*sequences: int) -> str:
    return (
        f"no dead letter {', '.join(map(str, sequences))} in DEADLETTER (`venta deadletters list` shows what there is)"
    )


async def _only_dead_letter(nats: Nats, sequence: int) -> dict[str, str] | None:
    found = await dead_letter_headers(nats.url)
    return found[sequence] if list(found) == [sequence] else None


async def test_list_and_show_with_each_filter(nats: Nats) -> None:
    bus = await bus_on(nats.url, consumer_max_deliver=2)
    await bus.subscribe(consumer="directory", pattern="user.>", handler=Handler(reason="not_ready"))
    await bus.subscribe(consumer="indexer", pattern="vendor.>", handler=Handler(reason=None))
    created = user_event("user.created")
    await bus.publish(created)  # directory: not_ready
    await bus.publish(vendor_event())  # indexer: fails twice -> max_deliveries
    nc = await nats_py.connect(nats.url)
    await nc.jetstream().publish("events.vendor.created", b"{not json", headers={"Nats-Msg-Id": "poison-1"})
    await nc.close()
    await wait_for_dead_letters(nats.url, 3)
    await asyncio.sleep(GAP_S)
    await bus.publish(user_event("user.deleted"))  # directory: not_ready, GAP_S younger than the others
    await wait_for_dead_letters(nats.url, 4)

    aged: dict[tuple[str, ...], set[str]] = {  # first, while the new one is younger than AGE
        ("--older-than", AGE): {"user.created", "vendor.updated", "vendor.created"},
        ("--newer-than", AGE): {"user.deleted"},
        ("--older-than", AGE, "--newer-than", "1h"): {"user.created", "vendor.updated", "vendor.created"},
        ("--consumer", "directory", "--older-than", AGE): {"user.created"},
    }
    await expect_listed(nats, aged)

    everything = await venta_deadletters(nats.url, "list", "--json")
    assert everything.code == 0, everything
    listed = everything.json()
    assert (listed["stream"], listed["total"], listed["matched"]) == ("DEADLETTER", 4, 4)
    by_type = {d["type"]: d for d in listed["deadLetters"]}
    assert {t: (d["reason"], d["consumer"]) for t, d in by_type.items()} == {
        "user.created": ("not_ready", "directory"),
        "user.deleted": ("not_ready", "directory"),
        "vendor.updated": ("max_deliveries", "indexer"),
        "vendor.created": ("bad_json", "indexer"),
    }
    assert by_type["vendor.updated"]["deliveries"] == 2 and "index refused" in by_type["vendor.updated"]["detail"]
    assert by_type["user.created"]["messageId"] == created.message_id
    assert by_type["vendor.created"]["messageId"] == "poison-1"
    sequences = [d["sequence"] for d in listed["deadLetters"]]
    assert sequences == sorted(sequences), "oldest first"

    await expect_listed(
        nats,
        {
            ("--type", "user.created"): {"user.created"},
            ("--type", "user.*"): {"user.created", "user.deleted"},
            ("--type", "vendor.*"): {"vendor.updated", "vendor.created"},
            ("--type", "user.created", "--type", "vendor.up*"): {"user.created", "vendor.updated"},
            ("--reason", "not_ready"): {"user.created", "user.deleted"},
            ("--reason", "bad_json", "--reason", "max_deliveries"): {"vendor.created", "vendor.updated"},
            ("--consumer", "indexer"): {"vendor.created", "vendor.updated"},
            ("--type", "vendor.*", "--reason", "bad_json"): {"vendor.created"},
            ("--consumer", "directory", "--older-than", "1h"): set(),
        },
    )

    limited = await venta_deadletters(nats.url, "list", "--json", "--limit", "2")
    assert [d["sequence"] for d in limited.json()["deadLetters"]] == sequences[:2]
    assert limited.json()["matched"] == 4

    table = await venta_deadletters(nats.url, "list", "--consumer", "indexer")
    assert table.code == 0, table
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["SEQ", "AGE", "TYPE", "REASON", "CONSUMER", "DELIVERIES", "DETAIL"]
    assert any("max_deliveries" in line and "vendor.updated" in line for line in lines[1:])
    assert lines[-1] == "2 of 4 dead letters in DEADLETTER match"

    sequence = by_type["user.created"]["sequence"]
    shown, shown_json = await asyncio.gather(
        venta_deadletters(nats.url, "show", str(sequence)),
        venta_deadletters(nats.url, "show", str(sequence), "--json"),
    )
    assert shown.code == shown_json.code == 0, f"{shown}\n{shown_json}"
    for text in ("not_ready", "directory", "events.user.created", created.message_id, "Venta-Dead-Letter-Reason"):
        assert text in shown.stdout
    document = shown_json.json()
    assert document["headers"]["Venta-Original-Msg-Id"] == created.message_id
    assert document["payload"] == created.encode().decode()
    await bus.close()


async def test_replay_reaches_the_consumer_with_a_new_message_id_and_the_dead_letter_is_gone(nats: Nats) -> None:
    bus = await bus_on(nats.url)
    handler = Handler(reason="not_ready")
    await bus.subscribe(consumer="directory", pattern="user.>", handler=handler)
    event = user_event()
    await bus.publish(event)
    await wait_for_dead_letters(nats.url, 1)

    dry = await venta_deadletters(nats.url, "replay", "--reason", "not_ready")
    assert dry.code == 0, dry
    assert "dry run: would replay 1 dead letter(s)" in dry.stdout
    await asyncio.sleep(0.5)
    assert await stream_messages(nats.url, "DEADLETTER") == 1 and await stream_messages(nats.url, "EVENTS") == 1

    handler.broken = False  # the cause is fixed
    done = await venta_deadletters(nats.url, "replay", "--reason", "not_ready", "--yes")
    assert done.code == 0, done
    assert "replayed 1 -> events.user.created" in done.stdout and "replayed 1 dead letter(s)" in done.stdout
    await eventually(lambda: handler.handled)
    replayed = handler.handled[0]
    assert replayed.envelope == event, "the payload is replayed unchanged (the event keeps its messageId)"
    assert replayed.headers["Nats-Msg-Id"] != event.message_id, "a fresh dedupe id: else the stream drops it"
    assert replayed.headers["Venta-Replayed-From"] == event.message_id
    assert not any(h.startswith("Venta-Dead-Letter") for h in replayed.headers)
    assert await stream_messages(nats.url, "DEADLETTER") == 0
    again = await venta_deadletters(nats.url, "replay", "1", "--yes")
    assert (again.code, again.error) == (1, "venta deadletters replay: " + no_such(1)), again
    await bus.close()


async def test_a_replay_still_poisonous_is_dead_lettered_again_once(nats: Nats) -> None:
    bus = await bus_on(nats.url)
    handler = Handler(reason="not_ready")
    await bus.subscribe(consumer="directory", pattern="user.>", handler=handler)
    event = user_event()
    await bus.publish(event)
    await wait_for_dead_letters(nats.url, 1)

    for replay, dead in ((1, 2), (2, 3)):
        done = await venta_deadletters(nats.url, "replay", str(replay), "--yes", "--json")
        assert done.code == 0, done
        report = done.json()
        assert [r["sequence"] for r in report["replayed"]] == [replay] and report["replayed"][0]["deleted"]
        headers = await eventually(lambda dead=dead: _only_dead_letter(nats, dead))
        assert headers["Venta-Replayed-From"] == event.message_id, "the first original id, kept across replays"
        assert headers["Venta-Original-Msg-Id"] == report["replayed"][0]["messageId"]
        assert headers["Venta-Dead-Letter-Reason"] == "not_ready"
    await asyncio.sleep(1.5)
    assert list(await dead_letter_headers(nats.url)) == [3], "no loop: each replay is dead-lettered once"
    assert len(handler.attempts) == 3 and not handler.handled
    await bus.close()


async def test_a_replay_interrupted_before_the_delete_is_de_duplicated_when_repeated(
    nats: Nats, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = await bus_on(nats.url)
    handler = Handler(reason="not_ready")
    await bus.subscribe(consumer="directory", pattern="user.>", handler=handler)
    await bus.publish(user_event())
    await wait_for_dead_letters(nats.url, 1)
    handler.broken = False

    async def crash(self: DeadLetterStream, sequence: int) -> None:
        raise DeadLetterError(f"deleting dead letter {sequence}: connection lost")

    settings = EventSettings(nats_url=nats.url)
    async with open_dead_letters(settings, CATALOG, client_name="test") as dead:
        letters = await dead.get([1])
        with monkeypatch.context() as patch:
            patch.setattr(DeadLetterStream, "_delete", crash)
            report = await dead.replay(letters)
    assert report.error and "was replayed but not deleted" in report.error
    assert [(r.sequence, r.duplicate, r.deleted) for r in report.replayed] == [(1, False, False)]
    await eventually(lambda: handler.handled)
    assert await stream_messages(nats.url, "DEADLETTER") == 1, "nothing is lost: the dead letter is still there"

    again = await venta_deadletters(nats.url, "replay", "1", "--yes")
    assert again.code == 0, again
    assert "already there, de-duplicated" in again.stdout
    assert await stream_messages(nats.url, "DEADLETTER") == 0
    assert await stream_messages(nats.url, "EVENTS") == 2, "the original and one replay"
    await asyncio.sleep(1.0)
    assert len(handler.handled) == 1
    await bus.close()


async def test_purge_is_a_dry_run_until_yes(nats: Nats) -> None:
    bus = await bus_on(nats.url)
    await bus.subscribe(consumer="directory", pattern="user.>", handler=Handler(reason="not_ready"))
    for event_type in ("user.created", "user.deleted", "user.created"):
        await bus.publish(user_event(event_type))
    await wait_for_dead_letters(nats.url, 3)

    dry = await venta_deadletters(nats.url, "purge", "--type", "user.deleted")
    assert dry.code == 0, dry
    assert "dry run: would purge 1 dead letter(s); add --yes to do it" in dry.stdout and "user.deleted" in dry.stdout
    assert await stream_messages(nats.url, "DEADLETTER") == 3

    done = await venta_deadletters(nats.url, "purge", "--type", "user.deleted", "--yes")
    assert done.code == 0, done
    assert await stream_messages(nats.url, "DEADLETTER") == 2
    remaining = sorted(await dead_letter_headers(nats.url))
    one = await venta_deadletters(nats.url, "purge", str(remaining[0]), "--yes")
    assert (one.code, one.stdout.strip()) == (0, f"purged 1 dead letter(s): {remaining[0]}"), one
    nothing = await venta_deadletters(nats.url, "purge", "--yes")
    assert nothing.code == 2 and "which dead letters?" in nothing.error, nothing
    everything = await venta_deadletters(nats.url, "purge", "--all", "--yes", "--json")
    assert everything.code == 0, everything
    assert everything.json() == {"dryRun": False, "purged": remaining[1:], "error": None}
    assert await stream_messages(nats.url, "DEADLETTER") == 0
    empty = await venta_deadletters(nats.url, "purge", "--all", "--yes")
    assert (empty.code, empty.stdout.splitlines()[-1]) == (0, "nothing to purge"), empty
    await bus.close()


GARBAGE: list[tuple[tuple[str, ...], dict[str, str], int, str]] = [
    (("list", "--older-than", "1x"), {}, 2, "expected a duration like 90s"),
    (("list", "--newer-than=-5m"), {}, 2, "expected a duration like 90s"),
    (("list", "--older-than", "0s"), {}, 2, "longer than zero"),
    (("list", "--older-than", "99999999999999d"), {}, 2, "under 100 years"),
    (("list", "--older-than", "2h", "--newer-than", "1h"), {}, 2, "no dead letter is both"),
    (("list", "--reason", "Max Deliveries"), {}, 2, "expected a reason"),
    (("list", "--reason", "max_delivery"), {}, 2, "unknown reason 'max_delivery'"),
    (("list", "--type", "Vendor Updated"), {}, 2, "expected an event type"),
    (("list", "--type", "vendr.*"), {}, 2, "unknown type 'vendr.*'"),
    (("list", "--consumer", "a b"), {}, 2, "expected a consumer name"),
    (("list", "--consumer", "serch-sync"), {}, 2, "unknown consumer 'serch-sync'"),
    (("list", "--limit", "0"), {}, 2, "expected a whole number from 1"),
    (("list", "--limit", "many"), {}, 2, "expected a whole number from 1"),
    (("list", "--bogus"), {}, 2, "unrecognized arguments: --bogus"),
    (("show",), {}, 2, "the following arguments are required: SEQ"),
    (("show", "abc"), {}, 2, "expected a whole number from 1"),
    (("show", "99999999999999999999"), {}, 2, "expected a whole number from 1"),
    (("show", "999"), {}, 1, no_such(999)),
    (("replay", "999", "--yes"), {}, 1, no_such(999)),
    (("replay", "1", "999", "998", "--yes"), {}, 1, no_such(998, 999)),
    (("replay", "1", "--type", "user.created", "--yes"), {}, 2, "not both"),
    (("replay", "--yes"), {}, 2, "which dead letters?"),
    (("replay", "--all", "--reason", "not_ready", "--yes"), {}, 2, "drop it, or drop the filters"),
    (("purge", "1", "999", "--yes"), {}, 1, no_such(999)),
    (("purge", "--reason", "max_delivery", "--yes"), {}, 2, "unknown reason 'max_delivery'"),
    (("frobnicate",), {}, 2, "invalid choice: 'frobnicate'"),
    (("list",), {"VENTA_EVENTS_PUBLISH_TIMEOUT_S": "soon"}, 2, "VENTA_EVENTS_PUBLISH_TIMEOUT_S"),
    (("list",), {"VENTA_DEADLETTER_STREAM": "NOPE"}, 1, "stream NOPE does not exist"),
    (("replay", "--all", "--yes"), {"VENTA_EVENTS_PROVIDER": "redis"}, 2, "needs the events on NATS JetStream"),
]


async def test_garbage_is_refused_in_one_line_and_changes_nothing(nats: Nats) -> None:
    bus = await bus_on(nats.url)
    handler = Handler(reason="not_ready")
    await bus.subscribe(consumer="directory", pattern="user.>", handler=handler)
    for _ in range(2):
        await bus.publish(user_event())
    await wait_for_dead_letters(nats.url, 2)
    handler.broken = False
    before = await dead_letter_headers(nats.url)

    unreachable = f"nats://127.0.0.1:{free_port()}"
    with_password = f"nats://admin:s3cret@127.0.0.1:{free_port()}"
    limit = asyncio.Semaphore(8)

    async def run(args: tuple[str, ...], env: dict[str, str], url: str = nats.url) -> Any:
        async with limit:
            return await venta_deadletters(url, *args, **env)

    runs = await asyncio.gather(
        *(run(args, env) for args, env, _, _ in GARBAGE),
        run(("replay", "--all", "--yes"), {"VENTA_EVENTS_PUBLISH_TIMEOUT_S": "1"}, unreachable),
        run(("list",), {"VENTA_EVENTS_PUBLISH_TIMEOUT_S": "1"}, with_password),
    )
    expected = [(code, text) for _, _, code, text in GARBAGE] + [
        (1, f"cannot reach NATS at {unreachable} (no answer within 1s)"),
        (1, f"cannot reach NATS at {with_password.replace('admin:s3cret', '***')}"),
    ]
    for ran, (code, text) in zip(runs, expected, strict=True):
        assert ran.code == code and text in ran.error, ran
        assert "Traceback" not in ran.stderr and not ran.stdout, ran
        if code == 1 or "unknown" in text:  # refused by the command itself, not by argparse: one line only
            assert ran.stderr.strip() == ran.error, ran
    assert "s3cret" not in runs[-1].stderr, "credentials are never printed"
    assert await dead_letter_headers(nats.url) == before, "nothing was deleted or added"
    assert await stream_messages(nats.url, "EVENTS") == 2, "nothing was replayed"
    assert not handler.handled
    await bus.close()


async def test_a_nats_without_the_streams_is_reported_and_left_alone(nats: Nats) -> None:
    ran = await venta_deadletters(nats.url, "list")
    assert ran.code == 1, ran
    assert ran.stderr.strip() == (
        f"venta deadletters list: stream DEADLETTER does not exist at {nats.url}: no service has connected to this "
        "NATS yet, or VENTA_DEADLETTER_STREAM names another stream"
    )
    assert await stream_names(nats.url) == [], "the tool creates no stream (it never configures them)"
