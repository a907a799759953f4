"""UpdateVendor under ghz: the vendor service as deployed beside a bare grpc.aio + asyncpg server doing the same
UPDATE + outbox INSERT, and the same transaction straight from PostgreSQL with pgbench (the physical limit).

The write path: each call changes a vendor's name and description as its owner, and the change and its
`vendor.updated` event (the whole record, in the outbox) commit in one transaction. The vendor service runs as its
own process (`venta serve vendors`: the kit's interceptors, OpenTelemetry spans for every call and statement, no
exporter, the ORM, the kit's outbox; the outbox relay off, so the events stay in the outbox: publishing is not part
of this figure, events_pipeline.py measures it). The bare peer (bench/peers/grpc_vendor.py) locks the row and checks
the owner, updates it, and inserts the same envelope into the same `event_outbox` table by hand, in one asyncpg
transaction. pgbench runs that transaction's SQL, inserting an event the service wrote. PostgreSQL runs
without fsync, as for every benchmark here: the figure is the servers' work, not the disk's.

Set-up, placement and rounds are grpc_get_vendor.py's (bench/vendor_grpc.py). Each request is a vendor's own, sent
by its owner (`dataset.owner_id`), with a name and description that differ on every call (ghz's call time), so
every call really changes the row. A run is refused when any call failed (bench/loadgen.py) and, after every ghz
run, unless the outbox grew by exactly one `vendor.updated` event per call and the last one decodes as the event
catalogue's `VendorData`. The figure to improve: vendor service / bare peer (issue 13's goal: >= 0.6x).

Usage: `.venv/bin/python bench/grpc_update_vendor.py [--requests 5000] [--rounds 3]`, `--short` for a quick check;
the load generators come from bench/install-tools.sh.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

if __package__ in (None, ""):  # run as `python bench/grpc_update_vendor.py`: make the `bench` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import dataset
from bench.figures import Figure
from bench.loadgen import Load, LoadError
from bench.vendor_grpc import Servers, Workload, cli, figures, measure
from services.event_catalog import VendorData
from services.kit.events.envelope import decode

NAME = "grpc_update_vendor"
UPDATED = "vendor.updated"
EDIT = "{{.TimestampUnixNano}}"  # ghz's template: when the call starts, so every call changes the row, whatever the run


def request(n: int) -> dict[str, Any]:
    return {
        "id": dataset.vendor_id(n),
        "user_id": dataset.owner_id(n),
        "name": f"Vendor {n} (edit {EDIT})",
        "description": f"Street food stand number {n}, open most days (edit {EDIT})",
    }


WORKLOAD = Workload("UpdateVendor", request)


async def outbox(dsn: str) -> tuple[int, asyncpg.Record | None]:
    """How many rows the outbox holds, and its newest row."""
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetchval("SELECT count(*) FROM event_outbox")
        newest = await connection.fetchrow(
            "SELECT type, payload, headers::text AS headers FROM event_outbox ORDER BY id DESC LIMIT 1"
        )
        return rows, newest
    finally:
        await connection.close()


def events_written(servers: Servers, server: str, run: Callable[[], Load]) -> Load:
    """Run one ghz run and refuse it unless every call wrote its event: one outbox row each, the newest decodable."""
    before, _ = asyncio.run(outbox(servers.dsn))
    load = run()
    after, newest = asyncio.run(outbox(servers.dsn))
    if after - before != load.count or newest is None:
        raise LoadError(f"{server}: {load.count} calls succeeded but the outbox grew by {after - before} rows")
    envelope = decode(newest["payload"].encode())
    if envelope.type != UPDATED or newest["type"] != UPDATED:
        raise LoadError(f"{server}: the newest event is {newest['type']}/{envelope.type}, not {UPDATED}")
    VendorData.model_validate(envelope.data)
    return load


def sql_text(value: str) -> str:
    """`value` as an E'' literal with no colon in it (pgbench would read `:word` as a variable): same bytes stored."""
    return "E'" + value.replace("\\", "\\\\").replace("'", "\\'").replace(":", "\\x3a") + "'"


def limit_script(vendors: int) -> Callable[[Servers], str]:
    """The peer's transaction as a pgbench script, inserting the newest event of the outbox byte for byte (payload and
    trace headers): the service's, which warms up last."""

    def script(servers: Servers) -> str:
        _, last = asyncio.run(outbox(servers.dsn))
        assert last is not None, "the servers' warm-up wrote events"
        vendor = dataset.sql_vendor_id(":n")
        return "\n".join(
            [
                f"\\set n random(0, {vendors - 1})",
                "\\set edit random(1, 1000000000)",
                "BEGIN;",
                f"SELECT owner_id FROM vendor WHERE id = {vendor} FOR UPDATE;",
                "UPDATE vendor SET name = 'Vendor ' || :n::text || ' (edit ' || :edit::text || ')', "
                "description = 'Street food stand number ' || :n::text || ', open most days (edit ' || "
                ":edit::text || ')', updated_at = greatest(clock_timestamp(), updated_at + interval '1 microsecond') "
                f"WHERE id = {vendor} RETURNING *;",
                "INSERT INTO event_outbox (message_id, type, payload, headers) VALUES (gen_random_uuid()::text, "
                f"'{UPDATED}', {sql_text(last['payload'])}, {sql_text(last['headers'])});",
                "END;",
                "",
            ]
        )

    return script


def run(args: argparse.Namespace) -> list[Figure]:
    results = measure(WORKLOAD, args, limit_script=limit_script(args.vendors), check=events_written)
    return figures(
        NAME,
        WORKLOAD.method,
        results,
        min_ratio=0.6,
        limit="the same transaction (SELECT FOR UPDATE, UPDATE, outbox INSERT), prepared",
        limit_unit="transactions/s",
    )


if __name__ == "__main__":
    cli(__doc__, run)
