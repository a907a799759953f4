"""The event pipeline's throughput and latency, driven by ghz, beside raw JetStream in the same run.

1. Peer: raw JetStream with nats-py, publish (pipelined `publish_async`) and consume (durable pull consumer, `fetch`
   + `ack`) of N messages the size of a vendor event, on the same NATS server, both in one Python process.
2. Vendor change -> index throughput: ghz sends UpdateVendor as fast as answers come (`--concurrency` at a time),
   one change to each of N vendors, through the whole pipeline (vendor service: the row and its outbox event in one
   transaction; its relay: publish; search sync: consume and merge into the index); timed from ghz's start until
   the index's last of those changes committed.
3. Change -> searchable latency at a steady rate: ghz paces UpdateVendor at `--rate` per second (`--rps`), one change
   to each of another `rate x seconds` vendors; each change is timed from the moment the vendor service stamped it
   (its `updatedAt`, which the index document keeps as `syncVersion`) to the commit that made it searchable.
4. Search sync alone: the same vendor.updated envelopes published to JetStream with nats-py, as the relay does, timed
   until the index's last of them committed.

"Committed" is PostgreSQL's own commit timestamp of the index row's write (`track_commit_timestamp=on` in this run's
PostgreSQL: `pg_xact_commit_timestamp(xmin)`), so no poller races the pipeline and nothing is sampled: every change
has its exact searchable time, on the same clock as the service's stamp (one machine).

Every component is its own process, as in production: PostgreSQL and NATS, the vendor service and search sync
(`venta serve ...`); ghz (a native load generator, bench/install-tools.sh) drives it. The Python side of the pipeline
(vendor service, search sync) gets CPU 0, as does the nats-py peer while it runs; ghz, NATS and PostgreSQL the others
(bench/placement.py). Goals (issue 13): throughput >= 0.5x raw JetStream, p99 < 100 ms at 500 changes/s.

Usage: `.venv/bin/python bench/events_pipeline.py [--changes 5000] [--rate 500 --seconds 10]`, `--short` for a quick
check.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import nats
from nats.js.api import ConsumerConfig, StreamConfig

if __package__ in (None, ""):  # run as `python bench/events_pipeline.py`: make the `bench` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import dataset
from bench.figures import Figure, add_sampling_ratio, report
from bench.loadgen import Load, Tools, ghz
from bench.placement import Placement
from bench.processes import Processes, tracing_described
from bench.vendor_grpc import PROTO, load_generator
from services.devkit.servers import Nats, Postgres, free_port
from services.event_catalog import VendorData
from services.kit.db.migrations import upgrade
from services.kit.events.envelope import new_envelope
from services.vendors.app import MIGRATIONS

NAME = "events_pipeline"
CALL = "venta.vendor.v1.VendorService.UpdateVendor"
PAYLOAD = b"x" * 600  # about the size of a vendor.updated envelope
ARRIVAL_TIMEOUT_S = 120.0


async def raw_jetstream(url: str, messages: int) -> float:
    """Messages per second for publishing and consuming `messages` at once (both sides running together)."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="BENCH", subjects=["bench.>"]))
    sub = await js.pull_subscribe("bench.x", durable="bench", config=ConsumerConfig(max_ack_pending=20_000))
    consumed = 0

    async def consume() -> None:
        nonlocal consumed
        while consumed < messages:
            try:
                batch = await sub.fetch(256, timeout=1)
            except nats.errors.TimeoutError:
                continue
            for msg in batch:
                await msg.ack()
            consumed += len(batch)

    async def publish() -> None:
        futures = [await js.publish_async("bench.x", PAYLOAD) for _ in range(messages)]
        await asyncio.gather(*futures)

    started = time.perf_counter()
    await asyncio.gather(publish(), consume())
    elapsed = time.perf_counter() - started
    await js.delete_stream("BENCH")
    await nc.close()
    return messages / elapsed


class Index:
    """The search index's table, read for what the pipeline wrote: which changes arrived, and when they committed."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def arrived(self, tag: str, expected: int) -> list[tuple[float, float]]:
        """Once the index holds all `expected` changes named `<tag>-...`: (commit time, the change's stamp) of each,
        in seconds since the epoch. Raises when they do not all arrive within ARRIVAL_TIMEOUT_S."""
        deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
        while True:
            count = await self.pool.fetchval("SELECT count(*) FROM search_vendor WHERE name LIKE $1", f"{tag}-%")
            if count >= expected:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"only {count} of {expected} '{tag}' changes reached the index")
            await asyncio.sleep(0.05)
        rows = await self.pool.fetch(
            "SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin))::float8 AS committed,"
            " (doc->>'syncVersion')::bigint AS version FROM search_vendor WHERE name LIKE $1",
            f"{tag}-%",
        )
        return [(row["committed"], row["version"] / 1e6) for row in rows]


def changes_file(path: Path, numbers: range, tag: str) -> Path:
    """ghz's data file: one UpdateVendor per vendor of `numbers`, by its owner, renaming it `<tag>-<n>`, shuffled."""
    requests = [{"id": dataset.vendor_id(n), "user_id": dataset.owner_id(n), "name": f"{tag}-{n}"} for n in numbers]
    random.Random(tag).shuffle(requests)
    path.write_text(json.dumps(requests))
    return path


class Pipeline:
    """ghz against the vendor service of a running pipeline, and the index the changes end in."""

    def __init__(self, tools: Tools, placement: Placement, target: str, index: Index, work_dir: Path) -> None:
        self.tools, self.placement, self.target, self.index, self.work_dir = tools, placement, target, index, work_dir

    def _ghz(self, numbers: range, tag: str, concurrency: int, rps: float | None = None) -> Load:
        return ghz(
            self.tools,
            self.placement,
            target=self.target,
            call=CALL,
            proto=PROTO,
            data_file=changes_file(self.work_dir / f"{tag}.json", numbers, tag),
            requests=len(numbers),
            concurrency=concurrency,
            rps=rps,
        )

    async def throughput(self, numbers: range, tag: str, concurrency: int) -> tuple[float, Load]:
        """Changes per second from ghz's start to the commit of the last one in the index; and ghz's own figures."""
        started = time.time()
        load = await asyncio.to_thread(self._ghz, numbers, tag, concurrency)
        arrived = await self.index.arrived(tag, len(numbers))
        return len(numbers) / (max(committed for committed, _ in arrived) - started), load

    async def latency(self, numbers: range, tag: str, concurrency: int, rate: float) -> tuple[list[float], Load]:
        """Milliseconds from each change's stamp to its commit in the index, at `rate` changes per second."""
        load = await asyncio.to_thread(self._ghz, numbers, tag, concurrency, rate)
        arrived = await self.index.arrived(tag, len(numbers))
        return sorted((committed - stamped) * 1000 for committed, stamped in arrived), load


async def search_sync_alone(url: str, numbers: range, index: Index) -> float:
    """Events per second from JetStream into the index: vendor.updated envelopes (newer than anything the index
    holds) published pipelined, as the relay does, timed until the last of them committed in the index."""
    now = datetime.now(UTC)
    envelopes = [
        new_envelope(
            "vendor.updated",
            VendorData(
                id=dataset.vendor_id(n),
                owner_id=dataset.owner_id(n),
                name=f"s-{n}",
                created_at=now,
                updated_at=now + timedelta(seconds=60, microseconds=i),
            ),
            version=1,
        )
        for i, n in enumerate(numbers)
    ]
    nc = await nats.connect(url)
    js = nc.jetstream()
    started = time.time()
    futures = [await js.publish_async(e.subject, e.encode(), headers={"Nats-Msg-Id": e.message_id}) for e in envelopes]
    await asyncio.gather(*futures)
    await nc.close()
    arrived = await index.arrived("s", len(numbers))
    return len(numbers) / (max(committed for committed, _ in arrived) - started)


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if len(values) > 1 else values[0]


def start_pipeline(
    processes: Processes, pg: Postgres, nats_url: str, concurrency: int, sampling: float
) -> tuple[int, int]:
    """The vendor service (its outbox relay on) and search sync, ready, tracing as deployed with tracing on; their
    gRPC and health ports."""
    grpc_port, vendors_http, sync_http = free_port(), free_port(), free_port()
    common = {
        "VENTA_LOG_LEVEL": "WARNING",
        "VENTA_NATS_URL": nats_url,
        "VENTA_HOST": "127.0.0.1",
        **processes.start_tracing_sink(sampling),
    }
    processes.start_python(
        "vendors",
        ["-m", "services.cli", "serve", "vendors"],
        {
            **common,
            "VENTA_DATABASE_URL": pg.url_for("venta_vendors"),
            "VENTA_GRPC_PORT": str(grpc_port),
            "VENTA_HTTP_PORT": str(vendors_http),
            "VENTA_DB_POOL_SIZE": str(concurrency),
        },
        cpus="server",
    )
    processes.start_python(
        "search-sync",
        ["-m", "services.cli", "serve", "search-sync"],
        {**common, "VENTA_DATABASE_URL": pg.url_for("venta_search"), "VENTA_HTTP_PORT": str(sync_http)},
        cpus="server",
    )
    processes.wait_http(f"http://127.0.0.1:{vendors_http}/health/ready")
    processes.wait_http(f"http://127.0.0.1:{sync_http}/health/ready")
    return grpc_port, sync_http


def sync_counters(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/events", timeout=5) as response:
        counters: dict[str, Any] = json.load(response)
    return counters


async def measure(args: argparse.Namespace, tools: Tools, placement: Placement, tmp: Path) -> dict[str, Any]:
    # four disjoint sets of vendors: the warm-up changes, the throughput changes, the paced ones, search sync alone
    total = args.rate * args.seconds
    warm = range(0, min(300, args.changes))
    burst = range(warm.stop, warm.stop + args.changes)
    paced = range(burst.stop, burst.stop + int(total))
    alone = range(paced.stop, paced.stop + args.changes)
    pg = Postgres(tmp / "pg", durable=False, settings={"track_commit_timestamp": "on"})
    broker = Nats(tmp / "nats")
    with pg, broker:
        for server in (pg, broker):
            assert server.proc is not None
            placement.pin_support(server.proc.pid)
        with placement.on_server_cpus_here():
            raw = await raw_jetstream(broker.url, args.raw_messages)
        await upgrade(MIGRATIONS, pg.url_for("venta_vendors").replace("postgresql://", "postgresql+asyncpg://"))
        await dataset.seed(pg.url_for("venta_vendors"), range(alone.stop))
        processes = Processes(tmp, placement)
        try:
            grpc_port, sync_http = start_pipeline(processes, pg, broker.url, args.concurrency, args.sampling_ratio)
            async with asyncpg.create_pool(pg.url_for("venta_search"), min_size=1, max_size=2) as pool:
                pipeline = Pipeline(tools, placement, f"127.0.0.1:{grpc_port}", Index(pool), tmp)
                await pipeline.throughput(warm, "w", args.concurrency)  # connections, pools, statement caches
                platform, burst_load = await pipeline.throughput(burst, "t", args.concurrency)
                latencies, paced_load = await pipeline.latency(paced, "l", args.concurrency, args.rate)
                consumer = await search_sync_alone(broker.url, alone, Index(pool))
            counters = await asyncio.to_thread(sync_counters, sync_http)
        except BaseException:
            processes.report()
            raise
        finally:
            processes.stop()
    return {
        "raw": raw,
        "platform": platform,
        "burst": burst_load,
        "latencies": latencies,
        "paced": paced_load,
        "consumer": consumer,
        "counters": counters,
    }


def figures(args: argparse.Namespace, m: dict[str, Any]) -> list[Figure]:
    raw, platform, consumer, latencies = m["raw"], m["platform"], m["consumer"], m["latencies"]
    peer = f"raw JetStream publish+consume (nats-py): {raw:,.0f} msg/s"
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    paced: Load = m["paced"]
    return [
        Figure(
            NAME,
            "vendor change -> search index (UpdateVendor, outbox, relay, search sync)",
            f"{platform:,.0f} changes/s (UpdateVendor alone: {m['burst'].rps:,.0f} calls/s)",
            peer,
            f"{platform / raw:.3f}x",
            ">= 0.5x",
            platform / raw >= 0.5,
        ),
        Figure(
            NAME, "search sync alone (JetStream -> index)", f"{consumer:,.0f} events/s", peer, f"{consumer / raw:.3f}x"
        ),
        Figure(
            NAME,
            f"change -> searchable at {args.rate:g} changes/s",
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms (ghz paced {paced.rps:,.0f}/s; the call: p99 {paced.p99_ms:.1f} ms)",
            goal="p99 < 100 ms at 500/s",
            met=p99 < 100 if args.rate >= 500 else None,  # the goal is for 500/s; a short run's rate says nothing
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--raw-messages", type=int, default=50_000)
    parser.add_argument("--changes", type=int, default=5000, help="changes of the throughput row (one per vendor)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=500.0, help="changes per second of the latency row")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the latency row sends")
    parser.add_argument("--figures", type=Path, help="also write the figures as JSON here (for python -m bench)")
    parser.add_argument("--short", action="store_true", help="a quick check: 2,000 raw, 300 changes, 100/s for 2 s")
    add_sampling_ratio(parser)
    args = parser.parse_args()
    if args.short:
        args.raw_messages, args.changes, args.rate, args.seconds = 2000, 300, 100.0, 2.0
    tools, placement = load_generator(), Placement.for_this_machine()
    with tempfile.TemporaryDirectory(prefix="venta-bench-events-") as tmp:
        measured = asyncio.run(measure(args, tools, placement, Path(tmp)))
    counters, paced = measured["counters"], measured["paced"]
    print(
        f"events pipeline: {args.raw_messages} raw messages, {args.changes} changes (concurrency {args.concurrency}), "
        f"{args.rate:g} changes/s for {args.seconds:g} s; ghz {tools.ghz_version}"
    )
    print(
        placement.describe(
            servers="the vendor service (with its outbox relay) and search sync; the nats-py peer while it runs",
            support="ghz, NATS, PostgreSQL, the OTLP collector stand-in",
        )
    )
    print(tracing_described(args.sampling_ratio))
    print(
        f"paced: {len(measured['latencies'])} changes, ghz {paced.rps:.0f}/s, max {max(measured['latencies']):.1f} ms"
    )
    print(
        f"search sync: consumed {counters['consumed']}, failed {counters['failed']}, "
        f"dead-lettered {counters['deadLettered']}, lag {counters['consumerLag']}",
        flush=True,
    )
    report(figures(args, measured), args.figures)


if __name__ == "__main__":
    main()
