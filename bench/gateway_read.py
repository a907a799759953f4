"""GET /v1/vendors/{id} through the HTTP gateway under vegeta, cached (Redis) and cold (gateway -> gRPC -> PostgreSQL),
beside a bare FastAPI app answering the same reads from Redis and from PostgreSQL (asyncpg), all in one run.

Every component is its own process, as in production: PostgreSQL, Redis, the vendor and user services, the local
identity provider, the gateway (authentication, rate limiting, metrics, security headers and tracing all on, as
`venta serve gateway` starts it) and the peer (bench/peers/http_vendor.py: no auth, no middleware). vegeta, a
native load generator, drives both with the same number of workers over kept-alive connections; the gateway and
the peer share one CPU, everything else the other (bench/placement.py). Rounds alternate who goes first; medians are
reported.

- cached: random ids of a hot set of 1,024 vendors the gateway has cached; the peer reads the very bodies the gateway
  stored, under the same Redis keys. Goal (issue 13): >= 0.8x the peer.
- cold: random ids of 2^18 other vendors, so nearly every read is a miss (the gateway's own hit/miss counters give
  the exact share, printed beside the row); the peer reads the same rows with asyncpg. Goal: >= 0.6x the peer.
Redis is emptied and the hot set cached again before every round.

Usage: `.venv/bin/python bench/gateway_read.py [--requests 5000] [--rounds 3]`, `--short` for a quick check;
vegeta comes from bench/install-tools.sh.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import re
import sys
import tempfile
import urllib.request
from pathlib import Path

import httpx
import redis

if __package__ in (None, ""):  # run as `python bench/gateway_read.py`: make the `bench` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import dataset
from bench.figures import Figure, against, benchmark_parser, report
from bench.loadgen import Load, MissingTool, Tools, find_tools, median, vegeta
from bench.placement import Placement
from bench.processes import PEERS, Processes, mint_token, tracing_described
from services.devkit.servers import Postgres, Redis, free_port
from services.gateway.cache import PREFIX as CACHE_PREFIX
from services.kit.db.migrations import upgrade
from services.users.app import MIGRATIONS as USER_MIGRATIONS
from services.vendors.app import MIGRATIONS as VENDOR_MIGRATIONS

NAME = "gateway_read"
HOT_BITS = 10  # 1,024 cached vendors: n in [0, 1024)
COLD_START = 1 << 20  # cold vendors: n in [2^20, 2^20 + 2^cold_bits)
ROWS = ("bare, Redis", "gateway, cached", "bare, asyncpg", "gateway, cold")


async def prepare(dbs: dict[str, str], cold_bits: int) -> None:
    for migrations, url in ((VENDOR_MIGRATIONS, dbs["vendors"]), (USER_MIGRATIONS, dbs["users"])):
        await upgrade(migrations, url.replace("postgresql://", "postgresql+asyncpg://"))
    await dataset.seed(dbs["vendors"], range(1 << HOT_BITS))
    await dataset.seed(dbs["vendors"], range(COLD_START, COLD_START + (1 << cold_bits)))


async def cache_hot_set(gateway: str, headers: dict[str, str], concurrency: int) -> None:
    """Read every hot vendor once through the gateway, which caches it."""
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=gateway, headers=headers, limits=limits, timeout=30) as client:
        pending = iter(range(1 << HOT_BITS))

        async def worker() -> None:
            for n in pending:
                response = await client.get(f"/v1/vendors/{dataset.vendor_id(n)}")
                if response.status_code != 200:
                    raise SystemExit(f"caching the hot set: {response.status_code} {response.text[:300]}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def cache_counts(gateway: str) -> dict[str, float]:
    """The gateway's vendor cache lookups so far, by outcome, from its /metrics."""
    with urllib.request.urlopen(f"{gateway}/metrics", timeout=5) as response:
        text = response.read().decode()
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("venta_cache_requests_total{") and 'cache="gateway_vendor"' in line:
            result = re.search(r'result="(\w+)"', line)
            if result:
                counts[result.group(1)] = float(line.rsplit(" ", 1)[1])
    return counts


class Rows:
    """The four measured rows of one round, each one vegeta run over ids drawn at random (a new draw every run)."""

    def __init__(
        self, tools: Tools, placement: Placement, args: argparse.Namespace, urls: dict[str, str], work_dir: Path
    ) -> None:
        self.tools, self.placement, self.args, self.urls, self.work_dir = tools, placement, args, urls, work_dir
        self.hot = range(1 << HOT_BITS)
        self.cold = range(COLD_START, COLD_START + (1 << args.cold_bits))
        self.rng = random.Random(13)
        self.misses: list[float] = []  # share of misses of each cold gateway row

    def _get(self, base: str, numbers: range, requests: int, headers: tuple[str, ...] = ()) -> Load:
        return vegeta(
            self.tools,
            self.placement,
            urls=[f"{base}/{id_}" for id_ in dataset.random_ids(numbers, requests, self.rng)],
            concurrency=self.args.concurrency,
            work_dir=self.work_dir,
            headers=headers,
        )

    def measure(self, row: str, requests: int) -> Load:
        auth = (f"Authorization: Bearer {self.urls['token']}",)
        if row == "bare, Redis":
            return self._get(f"{self.urls['bare']}/redis/vendors", self.hot, requests)
        if row == "gateway, cached":
            return self._get(f"{self.urls['gateway']}/v1/vendors", self.hot, requests, auth)
        if row == "bare, asyncpg":
            return self._get(f"{self.urls['bare']}/pg/vendors", self.cold, requests)
        before = cache_counts(self.urls["gateway"])
        load = self._get(f"{self.urls['gateway']}/v1/vendors", self.cold, requests, auth)
        after = cache_counts(self.urls["gateway"])
        looked_up = sum(after.values()) - sum(before.values())
        self.misses.append((after.get("miss", 0) - before.get("miss", 0)) / max(looked_up, 1))
        return load


def run(args: argparse.Namespace) -> list[Figure]:
    try:
        tools = find_tools("vegeta")
    except MissingTool as exc:
        raise SystemExit(str(exc)) from None
    placement = Placement.for_this_machine()
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="venta-bench-gateway-"))
        pg, cache = Postgres(Path(tmp) / "pg", durable=False), Redis(Path(tmp) / "redis")
        stack.enter_context(pg)
        stack.enter_context(cache)
        for server in (pg, cache):
            assert server.proc is not None
            placement.pin_support(server.proc.pid)
        dbs = {name: pg.url_for(f"venta_{name}") for name in ("vendors", "users")}
        asyncio.run(prepare(dbs, args.cold_bits))
        processes = Processes(Path(tmp), placement)
        try:
            urls = start_platform(processes, dbs, cache.url, args.concurrency, args.sampling_ratio)
            rows = Rows(tools, placement, args, urls, Path(tmp) / "vegeta")
            loads = measure_rounds(rows, urls, cache.url, args)
        except BaseException:
            processes.report()
            raise
        finally:
            processes.stop()
    results = {row: median(runs) for row, runs in loads.items()}
    print(
        f"GET /v1/vendors/{{id}}: {args.requests} requests per row and round, {args.rounds} round(s) (medians), "
        f"{args.concurrency} workers (kept-alive connections); vegeta {tools.vegeta_version}"
    )
    print(
        placement.describe(
            servers="the gateway and the bare FastAPI peer (one measured at a time)",
            support="vegeta, PostgreSQL, Redis, the vendor and user services, the identity provider, the OTLP "
            "collector stand-in",
        )
    )
    print(tracing_described(args.sampling_ratio))
    misses = f"{min(rows.misses):.1%}-{max(rows.misses):.1%}" if args.rounds > 1 else f"{rows.misses[0]:.1%}"
    return [
        against(
            NAME,
            "GET vendor, cached: gateway (Redis hit)",
            results["gateway, cached"],
            "bare FastAPI + Redis",
            results["bare, Redis"],
            min_ratio=0.8,
        ),
        against(
            NAME,
            f"GET vendor, cold: gateway (miss: gRPC + PostgreSQL; {misses} misses)",
            results["gateway, cold"],
            "bare FastAPI + asyncpg",
            results["bare, asyncpg"],
            min_ratio=0.6,
        ),
    ]


def start_platform(
    processes: Processes, dbs: dict[str, str], redis_url: str, concurrency: int, sampling: float
) -> dict[str, str]:
    """Start the services, the gateway and the peer; their base URLs and a token for the gateway. The services trace
    as deployed with tracing on (`sampling` of the requests recorded and exported)."""
    ports = {name: free_port() for name in ("vendors", "users", "identity", "gateway", "bare")}
    side = {name: free_port() for name in ("vendors", "users")}
    common = {
        **processes.start_tracing_sink(sampling),
        "VENTA_LOG_LEVEL": "WARNING",
        "VENTA_HOST": "127.0.0.1",
        "VENTA_DB_POOL_SIZE": str(concurrency),
        "VENTA_NATS_URL": "nats://127.0.0.1:1",
        "VENTA_OUTBOX_RELAY_ENABLED": "false",
        "VENTA_USERS_ADDR": f"127.0.0.1:{ports['users']}",
        "VENTA_VENDORS_ADDR": f"127.0.0.1:{ports['vendors']}",
    }
    for name in ("vendors", "users"):
        processes.start_python(
            name,
            ["-m", "services.cli", "serve", name],
            {
                **common,
                "VENTA_DATABASE_URL": dbs[name],
                "VENTA_GRPC_PORT": str(ports[name]),
                "VENTA_HTTP_PORT": str(side[name]),
            },
            cpus="support",
        )
    identity = f"http://127.0.0.1:{ports['identity']}"
    processes.start_python(
        "identity",
        ["-m", "services.cli", "serve", "identity"],
        {**common, "VENTA_HTTP_PORT": str(ports["identity"]), "VENTA_IDENTITY_ISSUER": identity},
        cpus="support",
    )
    processes.start_python(
        "gateway",
        ["-m", "services.cli", "serve", "gateway"],
        {
            **common,
            "VENTA_HTTP_PORT": str(ports["gateway"]),
            "VENTA_REDIS_URL": redis_url,
            "VENTA_AUTH_ISSUER": identity,
            "VENTA_RATE_LIMIT": "100000000/60 seconds",
            "VENTA_CACHE_INVALIDATION_EVENTS": "false",
            "VENTA_LOCATION_ADDR": "127.0.0.1:1",
        },
        cpus="server",
    )
    processes.start_python(
        "bare",
        [
            str(PEERS / "http_vendor.py"),
            *("--port", str(ports["bare"]), "--dsn", dbs["vendors"], "--redis-url", redis_url),
            *("--cache-prefix", CACHE_PREFIX, "--pool-size", str(concurrency)),
        ],
        {},
        cpus="server",
    )
    for name in ("vendors", "users"):
        processes.wait_http(f"http://127.0.0.1:{side[name]}/health/ready")
    processes.wait_http(f"{identity}/health")
    gateway = f"http://127.0.0.1:{ports['gateway']}"
    processes.wait_http(f"{gateway}/health")
    processes.wait_port(ports["bare"])
    return {"gateway": gateway, "bare": f"http://127.0.0.1:{ports['bare']}", "token": mint_token(identity)}


def measure_rounds(rows: Rows, urls: dict[str, str], redis_url: str, args: argparse.Namespace) -> dict[str, list[Load]]:
    headers = {"Authorization": f"Bearer {urls['token']}"}
    loads: dict[str, list[Load]] = {row: [] for row in ROWS}
    with redis.Redis.from_url(redis_url) as client:
        for round_ in range(-1, args.rounds):  # round -1 warms up: connections, pools, statement caches
            client.flushdb()  # every round's cold reads are misses; the hot set is cached again
            asyncio.run(cache_hot_set(urls["gateway"], headers, args.concurrency))
            for row in ROWS if round_ % 2 == 0 else (*ROWS[1::-1], *ROWS[:1:-1]):
                load = rows.measure(row, args.requests if round_ >= 0 else min(300, args.requests))
                if round_ >= 0:
                    loads[row].append(load)
            if round_ < 0:
                rows.misses.clear()
    return loads


def main() -> None:
    parser = benchmark_parser(__doc__, "requests")
    parser.add_argument("--cold-bits", type=int, default=18, help="2^N vendors for cold reads (at most 20)")
    parser.add_argument("--short", action="store_true", help="a quick check: 300 requests, 2^12 cold vendors, 1 round")
    args = parser.parse_args()
    if args.short:
        args.requests, args.cold_bits, args.rounds = 300, 12, 1
    if not 1 <= args.cold_bits <= 20:
        parser.error("--cold-bits must be between 1 and 20")
    report(run(args), args.figures)


if __name__ == "__main__":
    main()
