"""The common ground of the vendor service's gRPC benchmarks: one PostgreSQL holding the dataset, the vendor service
as deployed and its bare peer as processes, ghz driving one call at each in alternating rounds, pgbench running the
same SQL alone, and the rows these make.

grpc_get_vendor.py and grpc_update_vendor.py (and profile_vendor_service.py) differ only in the call, the request
each vendor gets and the SQL of the physical limit (a `Workload`); the rest lives here once, so their figures are
measured the same way and a change of method reaches all of them. Nothing here decides what a benchmark measures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import dataset
from bench.figures import Figure, against, benchmark_parser, report
from bench.loadgen import ROOT, Load, MissingTool, Tools, find_tools, ghz, median, pgbench
from bench.placement import Placement
from bench.processes import DEPLOYED_SAMPLING, PEERS, Processes, tracing_described
from services.devkit.servers import Postgres, free_port
from services.kit.db.migrations import upgrade
from services.vendors.app import MIGRATIONS

PROTO = ROOT / "protos" / "venta" / "vendor" / "v1" / "vendor.proto"
VENTA, BARE, LIMIT = "vendor service", "bare grpc.aio + asyncpg", "PostgreSQL (pgbench)"
PACED = "paced: "


@dataclass(frozen=True)
class Workload:
    """What one benchmark drives: a VendorService method and the request message vendor `n` gets (ghz's JSON)."""

    method: str
    request: Callable[[int], dict[str, Any]]

    @property
    def call(self) -> str:
        return f"venta.vendor.v1.VendorService.{self.method}"


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
    tmp: Path,
    placement: Placement,
    *,
    vendors: int,
    concurrency: int,
    bare: bool = True,
    sampling: float = DEPLOYED_SAMPLING,
) -> Iterator[Servers]:
    """PostgreSQL holding `vendors` vendors, the vendor service and (with `bare`) the bare peer, ready; all stopped
    on exit. The servers go on the server CPUs, PostgreSQL on the support CPUs. The service's outbox relay is off:
    the events its writes add stay in the outbox (the write path is measured, not publishing). The service traces as
    deployed with tracing on: `sampling` of the calls recorded and exported (`Processes.start_tracing_sink`)."""
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
            tracing = processes.start_tracing_sink(sampling)
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
                    **tracing,
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


def write_requests(path: Path, vendors: int, workload: Workload) -> Path:
    """ghz's data file: one request message per vendor, shuffled; ghz sends them in turn."""
    requests = [workload.request(n) for n in range(vendors)]
    random.Random(1).shuffle(requests)
    path.write_text(json.dumps(requests))
    return path


class Driver:
    """ghz sending `workload`'s requests to one server of `servers`, the same way for every row."""

    def __init__(
        self, tools: Tools, placement: Placement, servers: Servers, workload: Workload, *, vendors: int, tmp: Path
    ) -> None:
        self.tools, self.placement, self.servers, self.workload = tools, placement, servers, workload
        self.data_file = write_requests(tmp / f"{workload.method}.json", vendors, workload)

    def __call__(
        self,
        server: str,
        requests: int,
        *,
        concurrency: int,
        duration_s: float | None = None,
        rps: float | None = None,
    ) -> Load:
        return ghz(
            self.tools,
            self.placement,
            target=f"127.0.0.1:{self.servers.ports[server]}",
            call=self.workload.call,
            proto=PROTO,
            data_file=self.data_file,
            requests=requests,
            concurrency=concurrency,
            duration_s=duration_s,
            rps=rps,
        )


def load_generator() -> Tools:
    """ghz, or an exit saying which command builds it."""
    try:
        return find_tools("ghz")
    except MissingTool as exc:
        raise SystemExit(str(exc)) from None


def measure(
    workload: Workload,
    args: argparse.Namespace,
    *,
    limit_script: Callable[[Servers], str],
    check: Callable[[Servers, str, Callable[[], Load]], Load] | None = None,
    paced_share: float | None = None,
) -> dict[str, Load]:
    """Medians of `args.rounds` alternating rounds: the vendor service and the bare peer under ghz, one at a time,
    and the physical limit, pgbench alone running `limit_script` (one transaction; made after the servers' warm-up,
    so it may copy what they wrote); after a warm-up of each. First prints how it runs (the line `python -m bench`
    quotes, and the placement). `check`, given the servers, the server's name and the ghz run, runs it and may
    refuse what it did: a benchmark's own proof that the calls did the work they stand for.

    With `paced_share`, then as many rounds again with both servers under the same open schedule (ghz `--rps`) at
    that share of the slower one's median throughput: their latencies at one offered load (`PACED` + name), where
    the closed loop's latency is mostly its queue (32 calls in flight / throughput)."""
    tools, placement = load_generator(), Placement.for_this_machine()
    print(
        f"{workload.method}: {args.requests} calls per row and round, {args.rounds} round(s) (medians), "
        f"{args.concurrency} concurrent, {args.vendors} vendors; ghz {tools.ghz_version}"
    )
    print(
        placement.describe(
            servers="the vendor service and the bare peer (one measured at a time); pgbench",
            support="ghz, PostgreSQL, the OTLP collector stand-in",
        ),
    )
    print(tracing_described(args.sampling_ratio), flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="venta-bench-grpc-") as tmp,
        vendor_servers(
            Path(tmp), placement, vendors=args.vendors, concurrency=args.concurrency, sampling=args.sampling_ratio
        ) as servers,
    ):
        drive = Driver(tools, placement, servers, workload, vendors=args.vendors, tmp=Path(tmp))

        def call(server: str, requests: int) -> Load:
            def run() -> Load:
                return drive(server, requests, concurrency=args.concurrency)

            return check(servers, server, run) if check else run()

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
        script = limit_script(servers)
        query(min(500, args.requests))
        loads: dict[str, list[Load]] = {VENTA: [], BARE: [], LIMIT: []}
        for round_ in range(args.rounds):
            for server in (BARE, VENTA) if round_ % 2 == 0 else (VENTA, BARE):
                loads[server].append(call(server, args.requests))
            loads[LIMIT].append(query(args.requests))
        results = {name: median(rows) for name, rows in loads.items()}
        if paced_share is not None:
            rate = paced_share * min(results[VENTA].rps, results[BARE].rps)
            paced: dict[str, list[Load]] = {VENTA: [], BARE: []}
            for round_ in range(args.rounds):
                for server in (BARE, VENTA) if round_ % 2 == 0 else (VENTA, BARE):
                    paced[server].append(drive(server, args.requests, concurrency=args.concurrency, rps=rate))
            results.update({PACED + name: median(rows) for name, rows in paced.items()})
    return results


def figures(
    benchmark: str,
    method: str,
    results: dict[str, Load],
    *,
    min_ratio: float,
    p99_within_ms: float | None = None,
    limit: str,
    limit_unit: str,
) -> list[Figure]:
    """The rows of one call: the service against the peer (the goal), the peer and the service against the physical
    limit, and the limit itself (`limit` says what pgbench ran, in `limit_unit`)."""
    return [
        against(
            benchmark,
            f"{method}: vendor service (`venta serve vendors`)",
            results[VENTA],
            BARE,
            results[BARE],
            min_ratio=min_ratio,
            p99_within_ms=p99_within_ms,
        ),
        against(
            benchmark,
            f"{method}: bare grpc.aio + asyncpg (peer)",
            results[BARE],
            LIMIT,
            results[LIMIT],
            peer_unit=limit_unit,
        ),
        against(
            benchmark,
            f"{method}: vendor service vs the physical limit",
            results[VENTA],
            LIMIT,
            results[LIMIT],
            peer_unit=limit_unit,
        ),
        Figure(benchmark, f"PostgreSQL: {limit} (pgbench)", results[LIMIT].describe(limit_unit)),
        *(
            [
                against(
                    benchmark,
                    f"{method}: vendor service, both servers paced at one rate (p99 at the same offered load)",
                    results[PACED + VENTA],
                    BARE,
                    results[PACED + BARE],
                )
            ]
            if PACED + VENTA in results
            else []
        ),
    ]


def cli(description: str | None, run: Callable[[argparse.Namespace], list[Figure]]) -> None:
    """The command line every gRPC vendor benchmark takes; prints its figures (and writes them with --figures)."""
    parser = benchmark_parser(description, "calls")
    parser.add_argument("--vendors", type=int, default=1000)
    parser.add_argument("--short", action="store_true", help="a quick check: 300 calls, 100 vendors, 1 round")
    args = parser.parse_args()
    if args.short:
        args.requests, args.vendors, args.rounds = 300, 100, 1
    report(run(args), args.figures)
