"""GetVendorById under ghz: the vendor service as deployed beside a bare grpc.aio + asyncpg server on the same proto,
and the same query straight from PostgreSQL with pgbench (the physical limit), all in one run on one PostgreSQL.

The vendor service runs as its own process (`venta serve vendors` with its defaults: the kit's interceptors,
OpenTelemetry spans for every call, no exporter; the outbox relay off, reads never touch it). The bare peer is
bench/peers/grpc_vendor.py. Both answer the same 1,000 vendors to the same ghz (a Go load generator: 32 concurrent
calls on one connection, each call the next id of a shuffled list), and are placed on the same CPU, away from ghz and
PostgreSQL (bench/placement.py). Rounds alternate which server goes first; medians are reported.
The figure to improve: vendor service / bare peer (issue 13's goal: >= 0.8x, p99 within 2 ms).

Usage: `.venv/bin/python bench/grpc_get_vendor.py [--requests 5000] [--rounds 3]`, `--short` for a quick check;
the load generators come from bench/install-tools.sh.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/grpc_get_vendor.py`: make the `bench` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import dataset
from bench.figures import Figure, against, print_table, write_json
from bench.loadgen import ROOT, Load, MissingTool, find_tools, ghz, median, pgbench
from bench.placement import Placement
from bench.processes import PEERS, Processes
from services.devkit.servers import Postgres, free_port
from services.kit.db.migrations import upgrade
from services.vendors.app import MIGRATIONS

NAME = "grpc_get_vendor"
CALL = "venta.vendor.v1.VendorService.GetVendorById"
PROTO = ROOT / "protos" / "venta" / "vendor" / "v1" / "vendor.proto"
VENTA, BARE, LIMIT = "vendor service", "bare grpc.aio + asyncpg", "PostgreSQL (pgbench)"


@dataclass(frozen=True)
class Servers:
    pg: Postgres
    dsn: str
    ports: dict[str, int]  # gRPC port by server name
    processes: Processes


async def prepare(dsn: str, vendors: int) -> None:
    await upgrade(MIGRATIONS, dsn.replace("postgresql://", "postgresql+asyncpg://"))
    await dataset.seed(dsn, range(vendors))


@contextlib.contextmanager
def vendor_servers(
    tmp: Path, placement: Placement, *, vendors: int, concurrency: int, bare: bool = True
) -> Iterator[Servers]:
    """PostgreSQL holding `vendors` vendors, the vendor service and (with `bare`) the bare peer, ready; all stopped
    on exit. The servers go on the server CPUs, PostgreSQL on the support CPUs."""
    pg = Postgres(tmp / "pg", durable=False)
    with pg:
        assert pg.proc is not None
        placement.pin_support(pg.proc.pid)
        dsn = pg.url_for("venta_vendors")
        asyncio.run(prepare(dsn, vendors))
        ports = {VENTA: free_port(), BARE: free_port()}
        side_port = free_port()
        processes = Processes(tmp, placement)
        try:
            processes.start_python(
                "vendors",
                ["-m", "services.cli", "serve", "vendors"],
                {
                    "VENTA_DATABASE_URL": dsn,
                    "VENTA_HOST": "127.0.0.1",
                    "VENTA_GRPC_PORT": str(ports[VENTA]),
                    "VENTA_HTTP_PORT": str(side_port),
                    "VENTA_LOG_LEVEL": "WARNING",
                    "VENTA_DB_POOL_SIZE": str(concurrency),
                    "VENTA_NATS_URL": "nats://127.0.0.1:1",
                    "VENTA_OUTBOX_RELAY_ENABLED": "false",
                },
                cpus="server",
            )
            if bare:
                processes.start_python(
                    "bare",
                    [
                        str(PEERS / "grpc_vendor.py"),
                        *("--port", str(ports[BARE]), "--dsn", dsn, "--pool-size", str(concurrency)),
                    ],
                    {},
                    cpus="server",
                )
            processes.wait_http(f"http://127.0.0.1:{side_port}/health/ready")
            if bare:
                processes.wait_port(ports[BARE])
            yield Servers(pg, dsn, ports, processes)
        except BaseException:
            processes.report()
            raise
        finally:
            processes.stop()


def write_ids(path: Path, vendors: int) -> Path:
    """ghz's data file: one request message per vendor, shuffled; ghz sends them in turn."""
    ids = [{"id": dataset.vendor_id(n)} for n in range(vendors)]
    random.Random(1).shuffle(ids)
    path.write_text(json.dumps(ids))
    return path


def run(args: argparse.Namespace) -> list[Figure]:
    try:
        tools = find_tools("ghz")
    except MissingTool as exc:
        raise SystemExit(str(exc)) from None
    placement = Placement.for_this_machine()
    script = f"\\set n random(0, {args.vendors - 1})\nSELECT * FROM vendor WHERE id = {dataset.sql_vendor_id(':n')};\n"
    with (
        tempfile.TemporaryDirectory(prefix="venta-bench-grpc-") as tmp,
        vendor_servers(Path(tmp), placement, vendors=args.vendors, concurrency=args.concurrency) as servers,
    ):
        data_file = write_ids(Path(tmp) / "ids.json", args.vendors)

        def call(server: str, requests: int) -> Load:
            return ghz(
                tools,
                placement,
                target=f"127.0.0.1:{servers.ports[server]}",
                call=CALL,
                proto=PROTO,
                data_file=data_file,
                requests=requests,
                concurrency=args.concurrency,
            )

        def query(transactions: int) -> Load:
            return pgbench(
                servers.pg.bin / "pgbench",
                placement,
                dsn=servers.dsn,
                script=script,
                transactions=transactions,
                clients=args.concurrency,
                work_dir=Path(tmp) / "pgbench",
            )

        for server in (BARE, VENTA):  # warm-up: connections, pools, statement caches
            call(server, min(500, args.requests))
        query(min(500, args.requests))
        loads: dict[str, list[Load]] = {VENTA: [], BARE: [], LIMIT: []}
        for round_ in range(args.rounds):
            for server in (BARE, VENTA) if round_ % 2 == 0 else (VENTA, BARE):
                loads[server].append(call(server, args.requests))
            loads[LIMIT].append(query(args.requests))
    results = {name: median(rows) for name, rows in loads.items()}
    print(
        f"GetVendorById: {args.requests} calls per row and round, {args.rounds} round(s) (medians), "
        f"{args.concurrency} concurrent, {args.vendors} vendors; ghz {tools.ghz_version}"
    )
    print(
        placement.describe(
            servers="the vendor service and the bare peer (one measured at a time); pgbench",
            support="ghz, PostgreSQL",
        )
    )
    return [
        against(
            NAME,
            "GetVendorById: vendor service (`venta serve vendors`)",
            results[VENTA],
            BARE,
            results[BARE],
            min_ratio=0.8,
            p99_within_ms=2,
        ),
        against(
            NAME,
            "GetVendorById: bare grpc.aio + asyncpg (peer)",
            results[BARE],
            LIMIT,
            results[LIMIT],
            peer_unit="queries/s",
        ),
        against(
            NAME,
            "GetVendorById: vendor service vs the physical limit",
            results[VENTA],
            LIMIT,
            results[LIMIT],
            peer_unit="queries/s",
        ),
        Figure(NAME, "PostgreSQL: the same query, prepared (pgbench)", results[LIMIT].describe("queries/s")),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=5000, help="calls per measured row and round")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--vendors", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians are reported")
    parser.add_argument("--short", action="store_true", help="a quick check: 300 calls, 100 vendors, 1 round")
    parser.add_argument("--figures", type=Path, help="also write the figures as JSON here (for python -m bench)")
    args = parser.parse_args()
    if args.short:
        args.requests, args.vendors, args.rounds = 300, 100, 1
    figures = run(args)
    print_table(figures)
    if args.figures:
        write_json(figures, args.figures)


if __name__ == "__main__":
    main()
