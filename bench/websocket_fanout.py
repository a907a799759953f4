"""Live location fan-out: one vendor moving, N users watching it, through the Socket.IO gateway, beside a bare
python-socketio server broadcasting the same messages to the same clients, in the same run.

The platform runs as `venta up` runs it (every service its own process: PostgreSQL, Redis, NATS, the user and
location services, the local identity provider, the websocket gateway with authentication, ownership checks, the
location write, presence, metrics and the Redis manager all on). The baseline is python-socketio alone: a room,
an emit, nothing else. Both are driven by the same python-socketio clients in this process, so the ratio is the
figure to watch; absolute numbers depend on the machine (the clients share its cores with the servers).

    .venv/bin/python bench/websocket_fanout.py                     # 1,000 watchers, 4 updates/s: latency
    .venv/bin/python bench/websocket_fanout.py --rate 20 --updates 200   # past saturation: throughput
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
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


# ---- clients ---------------------------------------------------------------------------------------------------------
class Watchers:
    def __init__(self) -> None:
        self.sent: dict[int, float] = {}
        self.latencies: list[float] = []
        self.last_at = 0.0
        self.clients: list[socketio.AsyncClient] = []
        self.expected = 0
        self.all_in = asyncio.Event()

    async def connect(self, url: str, count: int, token: str | None) -> None:
        async def one() -> None:
            client = socketio.AsyncClient(reconnection=False)
            joined = asyncio.Event()

            @client.on("vendor_sync", namespace="/user")  # type: ignore[untyped-decorator]
            async def on_sync(data: Any) -> None:
                now = time.perf_counter()
                step = round((data["location"]["lat"] - BASE_LAT) / STEP)
                if step in self.sent:
                    self.latencies.append(now - self.sent[step])
                    self.last_at = now
                    if len(self.latencies) >= self.expected:
                        self.all_in.set()

            @client.on("vendor_channels", namespace="/user")  # type: ignore[untyped-decorator]
            async def on_channels(data: Any) -> None:
                if data:
                    joined.set()

            await client.connect(
                url,
                namespaces=["/user"],
                transports=["websocket"],
                auth={"token": token} if token else None,
                wait_timeout=30,
            )
            await client.emit("updateUserLocation", VIEWPORT, namespace="/user")
            await asyncio.wait_for(joined.wait(), 30)
            self.clients.append(client)

        for start in range(0, count, 50):
            await asyncio.gather(*(one() for _ in range(min(50, count - start))))

    async def close(self) -> None:
        await asyncio.gather(*(c.disconnect() for c in self.clients), return_exceptions=True)


async def run_round(
    name: str,
    url: str,
    *,
    watchers: int,
    updates: int,
    rate: float,
    user_token: str | None,
    vendor_token: str | None,
    vendor_id: str,
) -> dict[str, float]:
    vendor = socketio.AsyncClient(reconnection=False)
    await vendor.connect(
        url,
        namespaces=["/vendor"],
        transports=["websocket"],
        auth={"token": vendor_token} if vendor_token else None,
        wait_timeout=30,
    )
    # the vendor is on the map before anyone looks, so every watcher's viewport finds it
    await vendor.call(
        "updateVendorLocation",
        {"vendorId": vendor_id, "lat": BASE_LAT, "long": BASE_LONG},
        namespace="/vendor",
        timeout=10,
    )
    audience = Watchers()
    connect_started = time.perf_counter()
    try:
        await audience.connect(url, watchers, user_token)
    except BaseException:
        await audience.close()
        await vendor.disconnect()
        raise
    connect_s = time.perf_counter() - connect_started
    audience.expected = watchers * updates
    started = time.perf_counter()
    for step in range(1, updates + 1):
        due = started + (step - 1) / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        audience.sent[step] = time.perf_counter()
        await vendor.emit(
            "updateVendorLocation",
            {"vendorId": vendor_id, "lat": BASE_LAT + step * STEP, "long": BASE_LONG},
            namespace="/vendor",
        )
    expected = watchers * updates
    with contextlib.suppress(TimeoutError):  # what did not arrive within a minute is reported as missing
        await asyncio.wait_for(audience.all_in.wait(), 60)
    await vendor.disconnect()
    await audience.close()
    cuts = statistics.quantiles(audience.latencies, n=100) if len(audience.latencies) > 1 else [0.0] * 99
    elapsed = max(audience.last_at - started, 1e-9)
    result = {
        "delivered": len(audience.latencies),
        "expected": expected,
        "per_s": len(audience.latencies) / elapsed,
        "p50_ms": cuts[49] * 1000,
        "p99_ms": cuts[98] * 1000,
        "connect_s": connect_s,
    }
    print(
        f"  {name:<22} delivered {result['delivered']}/{expected}  {result['per_s']:9.0f}/s  "
        f"p50 {result['p50_ms']:7.1f} ms  p99 {result['p99_ms']:7.1f} ms  (connecting {watchers}: {connect_s:.1f} s)",
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

    for noisy in ("engineio.client", "socketio.client"):  # "packet queue is empty" on every client hang-up
        logging.getLogger(noisy).setLevel(logging.ERROR)
    sys.path.insert(0, str(ROOT))
    from services.cli.registry import SERVICES
    from services.cli.up import LocalPlatform
    from services.devkit.servers import free_port

    os.environ["VENTA_VENDOR_LOCATION_LIMIT"] = "10000"  # the bench, not the abuse limit, sets the pace
    os.environ["VENTA_LOG_LEVEL"] = "WARNING"
    data_dir = Path(tempfile.mkdtemp(prefix="venta-bench-ws-"))
    platform = LocalPlatform(
        data_dir=data_dir, only=["users", "vendors", "location", "identity", "websocket"], port_offset=args.port_offset
    )
    baseline_port = free_port()
    baseline = subprocess.Popen([sys.executable, __file__, "--serve-baseline", str(baseline_port)], cwd=ROOT)
    try:
        platform.start()
        wait_http(f"http://127.0.0.1:{baseline_port}/socket.io/?EIO=4&transport=polling")

        def url(name: str) -> str:
            return f"127.0.0.1:{SERVICES[name].http_port + args.port_offset}"

        async def measure() -> dict[str, dict[str, float]]:
            grpc_addr = {
                n: f"127.0.0.1:{SERVICES[n].grpc_port + args.port_offset}"  # type: ignore[operator]
                for n in ("users", "vendors")
            }
            user_token, vendor_token, vendor_id = await accounts(
                f"http://{url('identity')}", grpc_addr["users"], grpc_addr["vendors"]
            )
            print(
                f"\n{args.watchers} watchers, {args.updates} updates at {args.rate:.0f}/s "
                f"({args.watchers * args.updates} deliveries per round)",
                flush=True,
            )
            common = {"watchers": args.watchers, "updates": args.updates, "rate": args.rate}
            bare = await run_round(
                "bare python-socketio",
                f"http://127.0.0.1:{baseline_port}",
                user_token=None,
                vendor_token=None,
                vendor_id="bench-vendor",
                **common,
            )
            venta = await run_round(
                "venta websocket",
                f"http://{url('websocket')}",
                user_token=user_token,
                vendor_token=vendor_token,
                vendor_id=vendor_id,
                **common,
            )
            return {"bare": bare, "venta": venta}

        results = asyncio.run(measure())
        bare, venta = results["bare"], results["venta"]
        print(
            f"\nratio venta/bare: deliveries/s {venta['per_s'] / bare['per_s']:.2f}x, "
            f"p50 latency {venta['p50_ms'] / max(bare['p50_ms'], 1e-9):.2f}x, "
            f"p99 latency {venta['p99_ms'] / max(bare['p99_ms'], 1e-9):.2f}x",
            flush=True,
        )
    finally:
        baseline.terminate()
        baseline.wait(10)
        platform.stop()


if __name__ == "__main__":
    main()
