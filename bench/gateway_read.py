"""GET /v1/vendors/{id} through the HTTP gateway, cold (cache miss: gateway -> gRPC -> PostgreSQL) and cached (Redis),
beside a bare FastAPI endpoint doing the same PostgreSQL read, all in the same run, with the same client.

Every component runs as its own process, as in production: PostgreSQL, Redis, the vendor and user services, the
local identity provider, the gateway (with authentication, rate limiting, metrics, security headers all on), and
the baseline (FastAPI + asyncpg under the same uvicorn). The load generator (httpx, here) is the same for all three,
so the ratios gateway/bare are the figures to watch; absolute numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from services.devkit.servers import Postgres, Redis, free_port
from services.kit.db.migrations import upgrade
from services.users.app import MIGRATIONS as USER_MIGRATIONS
from services.vendors.app import MIGRATIONS as VENDOR_MIGRATIONS

Call = Callable[[int], Awaitable[object]]


async def measure(call: Call, *, requests: int, concurrency: int) -> dict[str, float]:
    """`call(i)` for i in range(requests), `concurrency` at a time; throughput and latency percentiles."""
    latencies: list[float] = []
    counter = iter(range(requests))

    async def worker() -> None:
        for i in counter:
            started = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return {"rps": len(latencies) / elapsed, "p50_ms": cuts[49] * 1000, "p99_ms": cuts[98] * 1000}


# ---- the baseline: a bare FastAPI endpoint, same read, same server -------------------------------------------------
def serve_baseline(port: int, dsn: str, pool_size: int) -> None:
    import uvicorn
    from fastapi import FastAPI, HTTPException

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size)
        yield
        await app.state.pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/vendors/{vendor_id}")
    async def get_vendor(vendor_id: uuid.UUID) -> dict[str, Any]:
        row = await app.state.pool.fetchrow("SELECT * FROM vendor WHERE id = $1", vendor_id)
        if row is None:
            raise HTTPException(404)
        return {k: (str(v) if isinstance(v, (uuid.UUID, dt.datetime)) else v) for k, v in dict(row).items()}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ---- the platform ------------------------------------------------------------------------------------------------
class Processes:
    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        with open(self.logs / f"{name}.log", "wb") as log:
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, *args], env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
                )
            )

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


async def wait_ready(url: str, processes: Processes, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in processes.procs):
                raise SystemExit(f"a process exited while waiting for {url}; logs in {processes.logs}")
            try:
                if (await client.get(url, timeout=1)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit(f"{url} not ready after {timeout_s:.0f}s; logs in {processes.logs}")


async def seed(dsn: str, count: int) -> list[str]:
    """`count` vendors written straight into the vendor table (seeding is not what is measured)."""
    now = dt.datetime.now(dt.UTC)
    rows = [(uuid.uuid4(), uuid.uuid4(), f"vendor {i}", f"bench {i}", i % 2 == 0, now, now) for i in range(count)]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "vendor",
            records=rows,
            columns=["id", "owner_id", "name", "description", "open", "created_at", "updated_at"],
        )
    finally:
        await conn.close()
    return [str(row[0]) for row in rows]


async def run(requests: int, concurrency: int) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        Postgres(Path(tmp) / "pg", durable=False) as pg,
        Redis(Path(tmp) / "redis") as redis,
    ):
        vendors_db, users_db = pg.url_for("venta_vendors"), pg.url_for("venta_users")  # type: ignore[attr-defined]
        for migrations, url in ((VENDOR_MIGRATIONS, vendors_db), (USER_MIGRATIONS, users_db)):
            await upgrade(migrations, url.replace("postgresql://", "postgresql+asyncpg://"))
        ids = await seed(vendors_db, requests + 100)
        ports = {name: free_port() for name in ("vendors", "users", "identity", "gateway", "baseline")}
        side = {name: free_port() for name in ("vendors", "users")}
        common = {
            "VENTA_LOG_LEVEL": "WARNING",
            "VENTA_HOST": "127.0.0.1",
            "VENTA_DB_POOL_SIZE": str(concurrency),
            "VENTA_NATS_URL": "nats://127.0.0.1:1",
            "VENTA_OUTBOX_RELAY_ENABLED": "false",
            "VENTA_USERS_ADDR": f"127.0.0.1:{ports['users']}",
            "VENTA_VENDORS_ADDR": f"127.0.0.1:{ports['vendors']}",
        }
        processes = Processes(Path(tmp))
        try:
            for name, db in (("vendors", vendors_db), ("users", users_db)):
                processes.start(
                    name,
                    ["-m", "services.cli", "serve", name],
                    {
                        **common,
                        "VENTA_DATABASE_URL": db,
                        "VENTA_GRPC_PORT": str(ports[name]),
                        "VENTA_HTTP_PORT": str(side[name]),
                    },
                )
            identity = f"http://127.0.0.1:{ports['identity']}"
            processes.start(
                "identity",
                ["-m", "services.cli", "serve", "identity"],
                {**common, "VENTA_HTTP_PORT": str(ports["identity"]), "VENTA_IDENTITY_ISSUER": identity},
            )
            processes.start(
                "gateway",
                ["-m", "services.cli", "serve", "gateway"],
                {
                    **common,
                    "VENTA_HTTP_PORT": str(ports["gateway"]),
                    "VENTA_REDIS_URL": redis.url,  # type: ignore[attr-defined]
                    "VENTA_AUTH_ISSUER": identity,
                    "VENTA_RATE_LIMIT": "100000000/60 seconds",
                    "VENTA_CACHE_INVALIDATION_EVENTS": "false",
                    "VENTA_LOCATION_ADDR": "127.0.0.1:1",
                },
            )
            processes.start(
                "baseline",
                [
                    __file__,
                    "--serve-baseline",
                    str(ports["baseline"]),
                    "--dsn",
                    vendors_db,
                    "--concurrency",
                    str(concurrency),
                ],
                {},
            )
            for name in ("vendors", "users"):
                await wait_ready(f"http://127.0.0.1:{side[name]}/health/ready", processes)
            await wait_ready(f"{identity}/health", processes)
            await wait_ready(f"http://127.0.0.1:{ports['gateway']}/health", processes)
            await wait_ready(f"http://127.0.0.1:{ports['baseline']}/vendors/{ids[0]}", processes)
            results = await measure_all(ids, ports, identity, requests, concurrency)
        finally:
            processes.stop()
    report(results, requests, concurrency)


async def measure_all(
    ids: list[str], ports: dict[str, int], identity: str, requests: int, concurrency: int
) -> dict[str, dict[str, float]]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        minted = await client.post(f"{identity}/v1/tokens", json={"user": "bench_user", "ttlSeconds": 3600})
        headers = {"Authorization": f"Bearer {minted.json()['token']}"}
        gateway, baseline = f"http://127.0.0.1:{ports['gateway']}", f"http://127.0.0.1:{ports['baseline']}"
        warm, cold_ids = ids[:100], ids[100:]
        rng = random.Random(1)

        async def expect_ok(url: str, **kwargs: Any) -> None:
            response = await client.get(url, **kwargs)
            if response.status_code != 200:
                raise SystemExit(f"{url}: {response.status_code} {response.text[:300]}")

        async def via_gateway_cold(i: int) -> None:
            await expect_ok(f"{gateway}/v1/vendors/{cold_ids[i]}", headers=headers)  # each id once: a miss

        async def via_gateway_cached(i: int) -> None:
            await expect_ok(f"{gateway}/v1/vendors/{rng.choice(cold_ids)}", headers=headers)

        async def bare(i: int) -> None:
            await expect_ok(f"{baseline}/vendors/{rng.choice(ids)}")

        async def warm_up(i: int) -> None:
            await expect_ok(f"{gateway}/v1/vendors/{warm[i % len(warm)]}", headers=headers)
            await expect_ok(f"{baseline}/vendors/{warm[i % len(warm)]}")

        await measure(warm_up, requests=min(400, requests), concurrency=concurrency)
        return {
            "bare FastAPI + asyncpg": await measure(bare, requests=requests, concurrency=concurrency),
            "gateway, cold (miss)": await measure(via_gateway_cold, requests=requests, concurrency=concurrency),
            "gateway, cached (Redis)": await measure(via_gateway_cached, requests=requests, concurrency=concurrency),
        }


def report(results: dict[str, dict[str, float]], requests: int, concurrency: int) -> None:
    base = results["bare FastAPI + asyncpg"]
    print(f"GET /v1/vendors/{{id}}: {requests} requests per row, concurrency {concurrency}")
    print(f"{'':<26}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, r in results.items():
        print(f"{name:<26}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}")
    for name in ("gateway, cold (miss)", "gateway, cached (Redis)"):
        r = results[name]
        print(
            f"ratio {name.removeprefix('gateway, ').split(' ')[0]}/bare: throughput {r['rps'] / base['rps']:.2f}x, "
            f"p50 {r['p50_ms'] / base['p50_ms']:.1f}x, p99 {r['p99_ms'] / base['p99_ms']:.1f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=3000, help="per measured row")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline(args.serve_baseline, args.dsn, args.concurrency)
        return
    asyncio.run(run(args.requests, args.concurrency))


if __name__ == "__main__":
    main()
