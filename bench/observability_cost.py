"""What tracing and metrics cost on the gateway read path: `GET /v1/vendors/{id}` through two identical platforms in
the same run, one with tracing and metrics on, one with both off, measured in alternating rounds.

"On" is production's set-up at its most expensive: every request sampled (`--sampling-ratio 1` by default), spans
exported over OTLP/gRPC to a collector process (`services.devkit.otlp_sink`, which counts and drops them), the
`venta_*` metrics observed with exemplars (`--sampling-ratio 0.1` is the operator's default; `--no-export` creates
spans without exporting them, to tell the two costs apart). "Off" is `OTEL_SDK_DISABLED=true` (no provider, no
library patched, no interceptor) and `VENTA_METRICS_ENABLED=false` (the HTTP and gRPC edges observe nothing). Both
platforms (vendor and user services, identity provider, gateway: each its own process) read the same PostgreSQL and
use their own Redis database, so the cold rows (cache miss: gateway -> gRPC -> PostgreSQL) and cached rows (Redis)
differ only in what is measured. The ratios on/off are the figures to watch; absolute numbers depend on the machine.

vegeta (a native load generator, bench/install-tools.sh) sends the GETs, one platform at a time; the two gateways are
on the first CPU, vegeta, the collector, PostgreSQL, Redis and the other services on the others (bench/placement.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/observability_cost.py`: make the `bench` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import dataset
from bench.loadgen import Load, MissingTool, Tools, find_tools, vegeta
from bench.placement import Placement
from bench.processes import Processes, mint_token
from services.devkit.servers import Postgres, Redis, free_port
from services.kit.db.migrations import upgrade
from services.users.app import MIGRATIONS as USER_MIGRATIONS
from services.vendors.app import MIGRATIONS as VENDOR_MIGRATIONS

STACKS = ("off", "on")


@dataclass(frozen=True)
class Stack:
    gateway: str
    identity: str
    ready: tuple[str, ...]
    """URLs answering 200 once the platform serves."""


def _clean_environment() -> None:
    """The platforms' processes inherit this environment: no tracing set-up of the caller's may leak into them."""
    for name in [n for n in os.environ if n.startswith("OTEL_") or n == "VENTA_METRICS_ENABLED"]:
        del os.environ[name]


def start_stack(
    processes: Processes, name: str, *, dbs: dict[str, str], redis_url: str, concurrency: int, switches: dict[str, str]
) -> Stack:
    """Vendor and user services, identity provider and gateway, each its own process, with `switches`."""
    ports = {service: free_port() for service in ("vendors", "users", "identity", "gateway")}
    side = {service: free_port() for service in ("vendors", "users")}
    identity = f"http://127.0.0.1:{ports['identity']}"
    common = {
        **switches,
        "VENTA_LOG_LEVEL": "WARNING",
        "VENTA_HOST": "127.0.0.1",
        "VENTA_DB_POOL_SIZE": str(concurrency),
        "VENTA_NATS_URL": "nats://127.0.0.1:1",
        "VENTA_OUTBOX_RELAY_ENABLED": "false",
        "VENTA_USERS_ADDR": f"127.0.0.1:{ports['users']}",
        "VENTA_VENDORS_ADDR": f"127.0.0.1:{ports['vendors']}",
    }
    for service in ("vendors", "users"):
        processes.start_python(
            f"{name}-{service}",
            ["-m", "services.cli", "serve", service],
            {
                **common,
                "VENTA_DATABASE_URL": dbs[service],
                "VENTA_GRPC_PORT": str(ports[service]),
                "VENTA_HTTP_PORT": str(side[service]),
                "OTEL_SERVICE_NAME": f"{name}-{service}",
            },
        )
    processes.start_python(
        f"{name}-identity",
        ["-m", "services.cli", "serve", "identity"],
        {
            **common,
            "VENTA_HTTP_PORT": str(ports["identity"]),
            "VENTA_IDENTITY_ISSUER": identity,
            "VENTA_IDENTITY_KEY_DIR": str(processes.logs / f"{name}-keys"),
            "OTEL_SERVICE_NAME": f"{name}-identity",
        },
    )
    processes.start_python(
        f"{name}-gateway",
        ["-m", "services.cli", "serve", "gateway"],
        {
            **common,
            "VENTA_HTTP_PORT": str(ports["gateway"]),
            "VENTA_REDIS_URL": redis_url,
            "VENTA_AUTH_ISSUER": identity,
            "VENTA_RATE_LIMIT": "100000000/60 seconds",
            "VENTA_CACHE_INVALIDATION_EVENTS": "false",
            "VENTA_LOCATION_ADDR": "127.0.0.1:1",
            "OTEL_SERVICE_NAME": f"{name}-gateway",
        },
        cpus="server",
    )
    gateway = f"http://127.0.0.1:{ports['gateway']}"
    ready = tuple(f"http://127.0.0.1:{side[s]}/health/ready" for s in ("vendors", "users"))
    return Stack(gateway, identity, (*ready, f"{identity}/health", f"{gateway}/health"))


def run(requests: int, concurrency: int, rounds: int, sampling_ratio: float, export: bool) -> None:
    _clean_environment()
    try:
        tools = find_tools("vegeta")
    except MissingTool as exc:
        raise SystemExit(str(exc)) from None
    placement = Placement.for_this_machine()
    with (
        tempfile.TemporaryDirectory() as tmp,
        Postgres(Path(tmp) / "pg", durable=False) as pg,
        Redis(Path(tmp) / "redis") as redis,
    ):
        for server in (pg, redis):
            assert server.proc is not None
            placement.pin_support(server.proc.pid)
        dbs = {"vendors": pg.url_for("venta_vendors"), "users": pg.url_for("venta_users")}  # type: ignore[attr-defined]
        asyncio.run(prepare(dbs, 2 * rounds * requests + 100))
        ids = [dataset.vendor_id(n) for n in range(2 * rounds * requests + 100)]
        processes = Processes(Path(tmp), placement)
        tracing = processes.start_tracing_sink(sampling_ratio)
        if not export:
            del tracing["OTEL_EXPORTER_OTLP_ENDPOINT"]
        switches = {
            "on": {**tracing, "VENTA_METRICS_ENABLED": "true"},
            "off": {"OTEL_SDK_DISABLED": "true", "VENTA_METRICS_ENABLED": "false"},
        }
        base_redis = redis.url.rsplit("/", 1)[0]  # type: ignore[attr-defined]
        try:
            stacks = {
                name: start_stack(
                    processes,
                    name,
                    dbs=dbs,
                    redis_url=f"{base_redis}/{n + 1}",
                    concurrency=concurrency,
                    switches=switches[name],
                )
                for n, name in enumerate(STACKS)
            }
            for stack in stacks.values():
                for url in stack.ready:
                    processes.wait_http(url)
            driver = Driver(tools, placement, stacks, concurrency, Path(tmp) / "vegeta")
            results = measure_stacks(driver, ids, requests, rounds)
        except BaseException:
            processes.report(lines=10)
            raise
        finally:
            processes.stop()
        exported = (Path(tmp) / "otlp-sink.log").read_text().strip() or "received ? spans"
    report(
        results,
        requests,
        concurrency,
        rounds,
        f"sampling {sampling_ratio:g}, {'OTLP' if export else 'no'} export",
        exported,
        tools.vegeta_version,
        placement,
    )


async def prepare(dbs: dict[str, str], vendors: int) -> None:
    for migrations, url in ((VENDOR_MIGRATIONS, dbs["vendors"]), (USER_MIGRATIONS, dbs["users"])):
        await upgrade(migrations, url.replace("postgresql://", "postgresql+asyncpg://"))
    await dataset.seed(dbs["vendors"], range(vendors))


class Driver:
    """vegeta reading vendors through one platform's gateway, with that platform's token."""

    def __init__(
        self, tools: Tools, placement: Placement, stacks: dict[str, Stack], concurrency: int, work_dir: Path
    ) -> None:
        self.tools, self.placement, self.stacks, self.concurrency, self.work_dir = (
            tools,
            placement,
            stacks,
            concurrency,
            work_dir,
        )
        self.auth = {name: f"Authorization: Bearer {mint_token(stack.identity)}" for name, stack in stacks.items()}

    def __call__(self, name: str, vendor_ids: list[str]) -> dict[str, float]:
        load: Load = vegeta(
            self.tools,
            self.placement,
            urls=[f"{self.stacks[name].gateway}/v1/vendors/{vendor_id}" for vendor_id in vendor_ids],
            concurrency=self.concurrency,
            work_dir=self.work_dir,
            headers=(self.auth[name],),
        )
        return {"rps": load.rps, "p50_ms": load.p50_ms, "p99_ms": load.p99_ms}


def measure_stacks(driver: Driver, ids: list[str], requests: int, rounds: int) -> dict[str, list[dict[str, float]]]:
    hot, cold = ids[:100], iter(ids[100:])
    rng = random.Random(1)
    results: dict[str, list[dict[str, float]]] = {}
    for name in STACKS:  # warm up: connections, JWKS, the hot set into each platform's cache
        driver(name, [hot[i % len(hot)] for i in range(min(400, max(requests, 200)))])
    for round_ in range(rounds):
        for name in STACKS if round_ % 2 == 0 else tuple(reversed(STACKS)):  # alternate who goes first
            fresh = [next(cold) for _ in range(requests)]  # each id once per platform: a miss every time
            results.setdefault(f"{name}, cold (miss)", []).append(driver(name, fresh))
            results.setdefault(f"{name}, cached (Redis)", []).append(driver(name, rng.choices(hot, k=requests)))
    return results


def _median(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(row[key] for row in rows) for key in rows[0]}


def report(
    results: dict[str, list[dict[str, float]]],
    requests: int,
    concurrency: int,
    rounds: int,
    tracing: str,
    exported: str,
    vegeta_version: str,
    placement: Placement,
) -> None:
    medians = {name: _median(rows) for name, rows in results.items()}
    print(
        f"GET /v1/vendors/{{id}}, tracing+metrics on ({tracing}) vs off: "
        f"median of {rounds} round(s) x {requests} requests per row, concurrency {concurrency}; vegeta {vegeta_version}"
    )
    print(
        placement.describe(
            servers="the gateways of both platforms (one measured at a time)",
            support="vegeta, PostgreSQL, Redis, the collector, the other services of both platforms",
        )
    )
    print(f"{'':<22}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for path in ("cold (miss)", "cached (Redis)"):
        for name in STACKS:
            r = medians[f"{name}, {path}"]
            print(f"{name + ', ' + path:<22}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}")
    print(f"collector: {exported}")
    for path in ("cold (miss)", "cached (Redis)"):
        on, off = medians[f"on, {path}"], medians[f"off, {path}"]
        print(
            f"ratio on/off {path.split(' ')[0]}: throughput {on['rps'] / off['rps']:.2f}x, "
            f"p50 {on['p50_ms'] / off['p50_ms']:.2f}x, p99 {on['p99_ms'] / off['p99_ms']:.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=2000, help="per measured row and round")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="alternating on/off rounds; medians are reported")
    parser.add_argument("--sampling-ratio", type=float, default=1.0, help="OTEL_TRACES_SAMPLER_ARG of the on stack")
    parser.add_argument("--no-export", action="store_true", help="spans created but not exported (no collector)")
    args = parser.parse_args()
    run(args.requests, args.concurrency, args.rounds, args.sampling_ratio, not args.no_export)


if __name__ == "__main__":
    main()
