"""GetVendorById throughput and latency over gRPC, beside the same read done directly against PostgreSQL.

The vendor service runs as its own process (`venta serve vendors`), as in production; the load generator and the
direct-PostgreSQL baseline run here, with the same concurrency and request count, against the same database.
The ratio gRPC/direct is the figure to improve.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import grpc

from services.contracts.venta.vendor.v1 import vendor_pb2 as pb
from services.contracts.venta.vendor.v1 import vendor_pb2_grpc
from services.devkit.servers import Postgres, free_port
from services.kit.db.migrations import upgrade
from services.vendors.app import MIGRATIONS


async def measure(call: Callable[[], Awaitable[object]], *, requests: int, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return {"rps": len(latencies) / elapsed, "p50_ms": cuts[49] * 1000, "p99_ms": cuts[98] * 1000}


def _wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit("vendor service exited")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("vendor service not ready")


async def run(requests: int, concurrency: int, vendors: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, Postgres(Path(tmp) / "pg", durable=False) as pg:
        url = pg.url_for("venta_vendors")  # type: ignore[attr-defined]
        await upgrade(MIGRATIONS, url.replace("postgresql://", "postgresql+asyncpg://"))
        grpc_port, http_port = free_port(), free_port()
        env = {
            **os.environ,
            "VENTA_DATABASE_URL": url,
            "VENTA_GRPC_PORT": str(grpc_port),
            "VENTA_HTTP_PORT": str(http_port),
            "VENTA_LOG_LEVEL": "WARNING",
            "VENTA_DB_POOL_SIZE": str(concurrency),
        }
        service = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is measured
            [sys.executable, "-m", "services.cli", "serve", "vendors"], env=env
        )
        try:
            _wait_ready(http_port, service)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                stub = vendor_pb2_grpc.VendorServiceStub(channel)
                ids = [
                    (await stub.CreateVendor(pb.VendorCreateData(name=f"v{i}", user_id=str(uuid.uuid4())))).id
                    for i in range(vendors)
                ]
                pool = await asyncpg.create_pool(url, min_size=concurrency, max_size=concurrency)
                rng = random.Random(1)

                async def via_grpc() -> object:
                    return await stub.GetVendorById(pb.VendorLookupByIdData(id=rng.choice(ids)))

                async def direct() -> object:
                    return await pool.fetchrow("SELECT * FROM vendor WHERE id = $1", uuid.UUID(rng.choice(ids)))

                await measure(via_grpc, requests=min(500, requests), concurrency=concurrency)  # warm-up
                await measure(direct, requests=min(500, requests), concurrency=concurrency)
                results = {
                    "postgres direct (asyncpg)": await measure(direct, requests=requests, concurrency=concurrency),
                    "GetVendorById over gRPC": await measure(via_grpc, requests=requests, concurrency=concurrency),
                }
                await pool.close()
        finally:
            service.terminate()
            service.wait(20)
    base = results["postgres direct (asyncpg)"]
    grpc_r = results["GetVendorById over gRPC"]
    print(f"GetVendorById: {requests} requests, concurrency {concurrency}, {vendors} vendors")
    print(f"{'':<28}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, r in results.items():
        print(f"{name:<28}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}")
    print(
        f"ratio gRPC/direct: throughput {grpc_r['rps'] / base['rps']:.2f}x, "
        f"p50 {grpc_r['p50_ms'] / base['p50_ms']:.1f}x, p99 {grpc_r['p99_ms'] / base['p99_ms']:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--vendors", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(run(args.requests, args.concurrency, args.vendors))


if __name__ == "__main__":
    main()
