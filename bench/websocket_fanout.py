"""Live location fan-out: one vendor moving, N users watching it, through the Socket.IO gateway, beside a bare
python-socketio server broadcasting the same messages to the same clients, in the same run.

The platform runs as `venta up` runs it (every service its own process: PostgreSQL, Redis, NATS, the user and
location services, the local identity provider, the websocket gateway with authentication, ownership checks, the
location write, presence, metrics and the Redis manager all on). The baseline is python-socketio alone: a room,
an emit, nothing else. Both are driven by the same clients: socket.io-client (the official JavaScript client), every
watcher its own connection, all in one Node.js process (bench/js/fanout.mjs) on the support CPUs, while the server
under test has the first CPU to itself (bench/placement.py).

    .venv/bin/python bench/websocket_fanout.py                     # 1,000 watchers, 4 updates/s: latency
    .venv/bin/python bench/websocket_fanout.py --rate 20 --updates 200   # past saturation: throughput
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import httpx
import socketio

if __package__ in (None, ""):  # run as `python bench/websocket_fanout.py`: make the `bench` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.placement import Placement
from tests.support.proc import status_kib

ROOT = Path(__file__).resolve().parents[1]
BASE_LAT, BASE_LONG, STEP = 10.0, 20.0, 1e-5
VIEWPORT = {
    "swLocation": {"lat": BASE_LAT - 1, "long": BASE_LONG - 1},
    "neLocation": {"lat": BASE_LAT + 1, "long": BASE_LONG + 1},
}


# ---- the baseline: python-socketio alone -----------------------------------------------------------------------------
def serve_baseline(port: int) -> None:
    from aiohttp import web

    sio = socketio.AsyncServer(async_mode="aiohttp", async_handlers=False)
    app = web.Application()
    sio.attach(app)

    @sio.on("updateUserLocation", namespace="/user")  # type: ignore[untyped-decorator]
    async def watch(sid: str, data: Any) -> None:
        await sio.enter_room(sid, "bench-vendor", namespace="/user")
        await sio.emit(
            "vendor_channels",
            [{"id": "bench-vendor", "location": {"lat": BASE_LAT, "long": BASE_LONG}}],
            to=sid,
            namespace="/user",
        )

    @sio.on("updateVendorLocation", namespace="/vendor")  # type: ignore[untyped-decorator]
    async def move(sid: str, data: Any) -> None:
        await sio.emit(
            "vendor_sync",
            {"id": "bench-vendor", "location": {"lat": data["lat"], "long": data["long"]}},
            room="bench-vendor",
            namespace="/user",
        )

    @sio.on("connect", namespace="/user")  # type: ignore[untyped-decorator]
    async def connect_user(sid: str, environ: Any, auth: Any = None) -> None:
        return None

    @sio.on("connect", namespace="/vendor")  # type: ignore[untyped-decorator]
    async def connect_vendor(sid: str, environ: Any, auth: Any = None) -> None:
        return None

    web.run_app(app, host="127.0.0.1", port=port, print=None)


# ---- clients: socket.io-client in one Node.js process (bench/js/fanout.mjs) ------------------------------------------
DRIVER = ROOT / "bench" / "js" / "fanout.mjs"


def driver_command() -> list[str]:
    """`node bench/js/fanout.mjs`, or a SystemExit saying how to install it (bench/install-tools.sh runs npm ci)."""
    node = shutil.which("node")
    if node is None:
        raise SystemExit("websocket_fanout needs Node.js (node) on PATH")
    if not (DRIVER.parent / "node_modules" / "socket.io-client").is_dir():
        raise SystemExit(f"socket.io-client is not installed in {DRIVER.parent}: run bench/install-tools.sh")
    return [node, str(DRIVER)]


def run_round(
    name: str,
    url: str,
    placement: Placement,
    *,
    watchers: int,
    updates: int,
    rate: float,
    user_token: str | None,
    vendor_token: str | None,
    vendor_id: str,
    server_pid: int,
) -> dict[str, float]:
    """One round: the watchers and the vendor in one Node.js process on the support CPUs; its figures, with the
    server's peak resident memory (its kernel-kept high-water mark: connections, buffers, per-socket state)."""
    plan = {
        "url": url,
        "watchers": watchers,
        "updates": updates,
        "rate": rate,
        "userToken": user_token,
        "vendorToken": vendor_token,
        "vendorId": vendor_id,
        "viewport": VIEWPORT,
        "base": {"lat": BASE_LAT, "long": BASE_LONG},
        "step": STEP,
        "waitS": 60,
    }
    done = subprocess.run(
        placement.on_support_cpus([*driver_command(), json.dumps(plan)]),
        capture_output=True,
        text=True,
        timeout=300 + watchers / 10 + updates / rate,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{name}: the Node.js clients failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    result = {
        "delivered": figures["delivered"],
        "expected": figures["expected"],
        "per_s": figures["perS"],
        "p50_ms": figures["p50Ms"],
        "p99_ms": figures["p99Ms"],
        "connect_s": figures["connectS"],
        "peak_rss_mib": status_kib(server_pid, "VmHWM") / 1024,
    }
    print(
        f"  {name:<22} delivered {result['delivered']}/{result['expected']}  {result['per_s']:9.0f}/s  "
        f"p50 {result['p50_ms']:7.1f} ms  p99 {result['p99_ms']:7.1f} ms  (connecting {watchers}: "
        f"{result['connect_s']:.1f} s), peak RSS {result['peak_rss_mib']:.0f} MiB",
        flush=True,
    )
    return result


# ---- the platform ----------------------------------------------------------------------------------------------------
async def accounts(identity_url: str, users_addr: str, vendors_addr: str) -> tuple[str, str, str]:
    from services.contracts.venta.user.v1 import user_pb2, user_pb2_grpc
    from services.contracts.venta.vendor.v1 import vendor_pb2, vendor_pb2_grpc

    async with httpx.AsyncClient() as client:
        tokens = [
            (await client.post(f"{identity_url}/v1/tokens", json={"user": who})).json()["token"]
            for who in ("user_bench_watcher", "user_bench_vendor")
        ]
    async with grpc.aio.insecure_channel(users_addr) as channel:
        owner = await user_pb2_grpc.UserServiceStub(channel).GetUserByClerkId(
            user_pb2.GetUserByClerkIdRequest(clerk_id="user_bench_vendor")
        )
    async with grpc.aio.insecure_channel(vendors_addr) as channel:
        created = await vendor_pb2_grpc.VendorServiceStub(channel).CreateVendor(
            vendor_pb2.VendorCreateData(name="Bench Truck", user_id=owner.id)
        )
    return tokens[0], tokens[1], str(created.id)


def wait_http(url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--updates", type=int, default=100)
    parser.add_argument(
        "--rate",
        type=float,
        default=4.0,
        help="vendor location updates per second (x watchers = deliveries per second asked for)",
    )
    parser.add_argument("--port-offset", type=int, default=7000)
    parser.add_argument("--serve-baseline", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
        return

    from services.cli.registry import SERVICES
    from services.cli.up import LocalPlatform
    from services.devkit.servers import free_port

    os.environ["VENTA_VENDOR_LOCATION_LIMIT"] = "10000"  # the bench, not the abuse limit, sets the pace
    os.environ["VENTA_LOG_LEVEL"] = "WARNING"
    command = driver_command()  # before anything starts: a missing client says so at once
    placement = Placement.for_this_machine()
    placement.pin_support(os.getpid())  # what this process starts (stores, services) inherits the support CPUs
    data_dir = Path(tempfile.mkdtemp(prefix="venta-bench-ws-"))
    platform = LocalPlatform(
        data_dir=data_dir, only=["users", "vendors", "location", "identity", "websocket"], port_offset=args.port_offset
    )
    baseline_port = free_port()
    baseline = subprocess.Popen(
        placement.on_server_cpus([sys.executable, __file__, "--serve-baseline", str(baseline_port)]), cwd=ROOT
    )
    try:
        platform.start()
        gateway_pid = next(r.proc.pid for r in platform.running if r.entry.name == "websocket")
        placement.pin_server(gateway_pid)
        wait_http(f"http://127.0.0.1:{baseline_port}/socket.io/?EIO=4&transport=polling")

        def url(name: str) -> str:
            return f"127.0.0.1:{SERVICES[name].http_port + args.port_offset}"

        grpc_addr = {n: f"127.0.0.1:{SERVICES[n].grpc_port + args.port_offset}" for n in ("users", "vendors")}  # type: ignore[operator]
        user_token, vendor_token, vendor_id = asyncio.run(
            accounts(f"http://{url('identity')}", grpc_addr["users"], grpc_addr["vendors"])
        )
        node = subprocess.run([command[0], "--version"], capture_output=True, text=True, check=True).stdout.strip()
        client = json.loads((DRIVER.parent / "package.json").read_text())["dependencies"]["socket.io-client"]
        print(
            f"\n{args.watchers} watchers, {args.updates} updates at {args.rate:.0f}/s "
            f"({args.watchers * args.updates} deliveries per round); clients: socket.io-client {client}, "
            f"one Node.js {node} process",
            flush=True,
        )
        common = {"watchers": args.watchers, "updates": args.updates, "rate": args.rate}
        bare = run_round(
            "bare python-socketio",
            f"http://127.0.0.1:{baseline_port}",
            placement,
            user_token=None,
            vendor_token=None,
            vendor_id="bench-vendor",
            server_pid=baseline.pid,
            **common,
        )
        venta = run_round(
            "venta websocket",
            f"http://{url('websocket')}",
            placement,
            user_token=user_token,
            vendor_token=vendor_token,
            vendor_id=vendor_id,
            server_pid=gateway_pid,
            **common,
        )
        print(
            placement.describe(
                servers="the websocket gateway and the bare python-socketio server (one measured at a time)",
                support="the Node.js clients, PostgreSQL, Redis, NATS, the user, vendor and location services, "
                "the identity provider",
            )
        )
        print(
            f"\nratio venta/bare: deliveries/s {venta['per_s'] / bare['per_s']:.2f}x, "
            f"p50 latency {venta['p50_ms'] / max(bare['p50_ms'], 1e-9):.2f}x, "
            f"p99 latency {venta['p99_ms'] / max(bare['p99_ms'], 1e-9):.2f}x, "
            f"peak RSS {venta['peak_rss_mib'] / bare['peak_rss_mib']:.2f}x",
            flush=True,
        )
    finally:
        baseline.terminate()
        baseline.wait(10)
        platform.stop()


if __name__ == "__main__":
    main()
