"""The event pipeline's throughput and latency, beside raw JetStream in the same run.

1. Baseline: raw JetStream with nats-py, publish (pipelined `publish_async`) and consume (durable pull consumer,
   `fetch` + `ack`) of N messages the size of a vendor event, on the same NATS server.
2. Platform change -> index throughput: vendor changes (UpdateVendor over gRPC, concurrent) through the whole
   pipeline (vendor service: commit + outbox; relay: publish; search sync: consume + merge into the index), timed
   until the index holds every change.
3. Change -> searchable latency at a steady rate: changes sent on a schedule (`--rate` per second), each timed from
   the call until the search index (PostgreSQL provider; a search reads the same committed table) shows it.

The vendor service and search sync run as their own processes (`venta serve ...`), as in production, on embedded
PostgreSQL and NATS. Ratios are the figures to follow; the goal for later work: throughput >= 0.5 of raw JetStream,
p99 < 100 ms at 500 changes/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import nats
from nats.js.api import ConsumerConfig, StreamConfig

from services.contracts.venta.vendor.v1 import vendor_pb2 as pb
from services.contracts.venta.vendor.v1 import vendor_pb2_grpc
from services.devkit.servers import Nats, Postgres, free_port
from services.event_catalog import VendorData
from services.kit.db.migrations import upgrade
from services.kit.events.envelope import new_envelope
from services.vendors.app import MIGRATIONS

PAYLOAD = b"x" * 600  # about the size of a vendor.updated envelope
MAX_IN_FLIGHT = 64
LOOK_BACK_US = 5_000_000  # versions are commit-time clocks of concurrent calls: they reach the index a bit unordered


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


async def consumer_side(url: str, vendors: list[tuple[str, str]], messages: int, search: asyncpg.Pool) -> float:
    """Events per second from JetStream into the index (search sync alone): vendor.updated envelopes published
    pipelined, as the relay does, timed until the index shows the last change of every vendor."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    final: dict[str, str] = {}
    now = datetime.now(UTC)
    envelopes = []
    for i in range(messages):
        vid, owner = vendors[i % len(vendors)]
        name = f"c-{i}-{uuid.uuid4().hex[:6]}"
        final[vid] = name
        data = VendorData(
            id=vid, owner_id=owner, name=name, created_at=now, updated_at=now + timedelta(seconds=60, microseconds=i)
        )
        envelopes.append(new_envelope("vendor.updated", data, version=1))
    started = time.perf_counter()
    futures = [await js.publish_async(e.subject, e.encode(), headers={"Nats-Msg-Id": e.message_id}) for e in envelopes]
    await asyncio.gather(*futures)
    await nc.close()
    while True:
        names = {vid: name for vid, (_, name) in (await index_versions(search)).items()}
        if all(names.get(vid) == name for vid, name in final.items()):
            return messages / (time.perf_counter() - started)
        await asyncio.sleep(0.002)


def _wait_ready(port: int, proc: subprocess.Popen[bytes], name: str) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{name} not ready")


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.loads(response.read())


async def index_versions(search: asyncpg.Pool) -> dict[str, tuple[int, str]]:
    rows = await search.fetch(
        "SELECT object_id, (doc->>'syncVersion')::bigint AS v, doc->>'name' AS name"
        " FROM search_vendor WHERE NOT deleted"
    )
    return {r["object_id"]: (r["v"], r["name"]) for r in rows}


async def throughput(
    stub: vendor_pb2_grpc.VendorServiceStub,
    vendors: list[tuple[str, str]],
    changes: int,
    concurrency: int,
    search: asyncpg.Pool,
) -> float:
    remaining = changes
    final: dict[str, str] = {}

    async def worker(w: int) -> None:
        nonlocal remaining
        i = w
        while remaining > 0:
            remaining -= 1
            vid, owner = vendors[i % len(vendors)]
            name = f"t-{uuid.uuid4().hex[:10]}"
            await stub.UpdateVendor(pb.VendorUpdateData(id=vid, user_id=owner, name=name))
            final[vid] = name
            i += concurrency

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    while True:
        names = {vid: name for vid, (_, name) in (await index_versions(search)).items()}
        if all(names.get(vid) == name for vid, name in final.items()):
            return changes / (time.perf_counter() - started)
        await asyncio.sleep(0.002)


async def latency(
    stub: vendor_pb2_grpc.VendorServiceStub,
    vendors: list[tuple[str, str]],
    rate: float,
    seconds: float,
    search: asyncpg.Pool,
) -> dict[str, Any]:
    """Send changes on a fixed schedule (at most MAX_IN_FLIGHT outstanding: past that the schedule slips and the
    achieved rate says so) and time each until the index shows it."""
    total = int(rate * seconds)
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    errors: list[str] = []
    in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
    done = asyncio.Event()

    async def poll() -> None:
        quiet_since = time.perf_counter()
        newest = max((v for v, _ in (await index_versions(search)).values()), default=0)
        while not done.is_set() or (len(seen) < len(sent) and time.perf_counter() - quiet_since < 10):
            rows = await search.fetch(  # only what changed since the last look: the poll must stay cheap
                "SELECT (doc->>'syncVersion')::bigint AS v, doc->>'name' AS name FROM search_vendor"
                " WHERE (doc->>'syncVersion')::bigint > $1",
                newest - LOOK_BACK_US,
            )
            now = time.perf_counter()
            for row in rows:
                newest = max(newest, row["v"])
                if row["name"] in sent and row["name"] not in seen:
                    seen[row["name"]] = now
                    quiet_since = now
            await asyncio.sleep(0.002)

    async def change(i: int) -> None:
        vid, owner = vendors[i % len(vendors)]
        name = f"l-{i}-{uuid.uuid4().hex[:6]}"
        sent[name] = time.perf_counter()
        try:
            await stub.UpdateVendor(pb.VendorUpdateData(id=vid, user_id=owner, name=name))
        except grpc.aio.AioRpcError as exc:
            errors.append(exc.code().name)
            del sent[name]
        finally:
            in_flight.release()

    poller = asyncio.create_task(poll())
    start = time.perf_counter()
    tasks = []
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await in_flight.acquire()
        tasks.append(asyncio.create_task(change(i)))
    await asyncio.gather(*tasks)
    achieved = total / (time.perf_counter() - start)
    done.set()
    await poller
    latencies = sorted((seen[n] - sent[n]) * 1000 for n in seen)
    return {"latencies": latencies, "sent": len(sent), "errors": len(errors), "achieved": achieved}


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pg = Postgres(Path(tmp) / "pg", durable=False)
        broker = Nats(Path(tmp) / "nats")
        pg.start()
        broker.start()
        procs: list[subprocess.Popen[bytes]] = []
        try:
            raw = await raw_jetstream(broker.url, args.raw_messages)
            vendors_url, search_url = pg.url_for("venta_vendors"), pg.url_for("venta_search")
            await upgrade(MIGRATIONS, vendors_url.replace("postgresql://", "postgresql+asyncpg://"))
            base = {**os.environ, "VENTA_LOG_LEVEL": "WARNING", "VENTA_NATS_URL": broker.url, "VENTA_HOST": "127.0.0.1"}
            grpc_port, vendors_http, sync_http = free_port(), free_port(), free_port()
            logs = open(Path(tmp) / "services.log", "ab")  # noqa: SIM115, ASYNC230 - lives as long as the services
            for name, env in (
                (
                    "vendors",
                    {
                        "VENTA_DATABASE_URL": vendors_url,
                        "VENTA_GRPC_PORT": str(grpc_port),
                        "VENTA_HTTP_PORT": str(vendors_http),
                        "VENTA_DB_POOL_SIZE": str(args.concurrency),
                    },
                ),
                ("search-sync", {"VENTA_DATABASE_URL": search_url, "VENTA_HTTP_PORT": str(sync_http)}),
            ):
                procs.append(
                    subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is measured
                        [sys.executable, "-m", "services.cli", "serve", name],
                        env={**base, **env},
                        stdout=logs,
                        stderr=subprocess.STDOUT,
                    )
                )
            _wait_ready(vendors_http, procs[0], "vendors")
            _wait_ready(sync_http, procs[1], "search sync")
            search = await asyncpg.create_pool(search_url, min_size=1, max_size=2)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                stub = vendor_pb2_grpc.VendorServiceStub(channel)
                vendors = []
                for i in range(args.vendors):
                    owner = str(uuid.uuid4())
                    created = await stub.CreateVendor(pb.VendorCreateData(name=f"bench {i}", user_id=owner))
                    vendors.append((created.id, owner))
                await throughput(stub, vendors, min(200, args.changes), args.concurrency, search)  # warm-up
                platform = await throughput(stub, vendors, args.changes, args.concurrency, search)
                steady = await latency(stub, vendors, args.rate, args.seconds, search)
                consumer = await consumer_side(broker.url, vendors, args.changes, search)
            events = await asyncio.to_thread(_get_json, f"http://127.0.0.1:{sync_http}/health/events")
            await search.close()
        except BaseException:
            tail = (Path(tmp) / "services.log").read_text(errors="replace").splitlines()[-40:]
            print("services log (tail):\n" + "\n".join(tail), file=sys.stderr)
            raise
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(20)
            broker.stop()
            pg.stop()
    latencies = steady["latencies"]
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else [latencies[0]] * 99
    print(
        f"events pipeline: {args.raw_messages} raw messages, {args.changes} changes (concurrency "
        f"{args.concurrency}), {args.rate:.0f} changes/s for {args.seconds:.0f}s, {args.vendors} vendors"
    )
    print(f"raw JetStream publish+consume (nats-py):  {raw:>10.0f} msg/s")
    print(f"platform change -> index:                 {platform:>10.0f} changes/s")
    print(f"  of which JetStream -> index (search sync): {consumer:>10.0f} events/s")
    print(f"ratio platform/raw: throughput {platform / raw:.3f}x (goal >= 0.5); search sync/raw {consumer / raw:.3f}x")
    print(
        f"change -> searchable at {args.rate:.0f}/s: p50 {cuts[49]:.1f} ms, p99 {cuts[98]:.1f} ms, "
        f"max {max(latencies):.1f} ms (achieved {steady['achieved']:.0f}/s, {len(latencies)}/{steady['sent']} "
        f"seen, {steady['errors']} errors; goal p99 < 100 ms at 500/s)"
    )
    print(
        f"search sync: consumed {events['consumed']}, failed {events['failed']}, "
        f"dead-lettered {events['deadLettered']}, lag {events['consumerLag']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--raw-messages", type=int, default=50_000)
    parser.add_argument("--changes", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--vendors", type=int, default=500)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
