"""A stopping process keeps serving for its drain delay while it tells everyone to go elsewhere, then exits.

Kubernetes takes a terminating pod out of its Services at the moment it sends SIGTERM, and that news reaches
kube-proxy, DNS and clients' connection pools a few seconds later; a process that stopped listening at once would
refuse what is still on its way (the rollout on a real node failed requests until this existed). Real processes,
real signals: an HTTP service answers with `Connection: close` and a red readiness; a gRPC service says NOT_SERVING
and still answers calls; both exit cleanly after the delay. On either event loop a process can run on (uvloop, the
default, or the standard library's): signals are the loop's to deliver.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
import uuid
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.contracts.venta.vendor.v1 import vendor_pb2, vendor_pb2_grpc
from services.devkit.servers import Nats, Postgres
from services.kit.db.migrations import upgrade
from services.vendors import app as vendors_app
from tests.support.service_process import ServiceProcess

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("loop_name", ["uvloop", "asyncio"])]
DELAY_S = 3.0


def ran_on(process: ServiceProcess, loop_name: str) -> int:
    """The process said which loop it served on (its start-up log line), the one VENTA_EVENT_LOOP asked for; the
    garbage collector's threshold it reported is VENTA_GC_THRESHOLD's. Returns how many objects it froze."""
    log = process.log.read_text()
    said = re.search(r"\(event loop: (\w+); garbage collector: threshold (\d+), (\d+) objects frozen\)", log)
    assert said is not None, log[-2000:]
    assert said[1] == loop_name
    assert int(said[2]) == int(process.env.get("VENTA_GC_THRESHOLD", "10000"))
    return int(said[3])


async def test_an_http_service_drains_then_exits(tmp_path: Path, loop_name: str) -> None:
    env = {"VENTA_SHUTDOWN_DELAY_S": str(DELAY_S), "VENTA_EVENT_LOOP": loop_name}
    identity = ServiceProcess("identity", env, tmp_path / "identity.log")
    identity.start()
    try:
        await identity.wait_ready(path="/health")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{identity.http_port}", timeout=5) as client:
            before = await client.get("/.well-known/jwks.json")
            assert before.status_code == 200 and "close" not in before.headers.get("connection", "")
            assert identity.proc is not None
            identity.proc.send_signal(signal.SIGTERM)
            stopped_at = time.monotonic()
            await asyncio.sleep(0.5)
            during = await client.get("/.well-known/jwks.json")
            assert during.status_code == 200 and during.json()["keys"]  # still serving
            assert during.headers["connection"] == "close"  # but asking the client to leave
            assert (await client.get("/health/ready")).status_code == 503
        exit_code = await asyncio.to_thread(identity.proc.wait, 30)
        assert exit_code == 0 and time.monotonic() - stopped_at >= DELAY_S
        assert ran_on(identity, loop_name) > 10_000  # by default: the modules and the app, frozen once started
    finally:
        identity.stop()


async def test_a_grpc_service_drains_then_exits(
    nats_server: Nats, postgres: Postgres, tmp_path: Path, loop_name: str
) -> None:
    url = postgres.url_for(f"vendors_{uuid.uuid4().hex[:8]}")
    await upgrade(vendors_app.MIGRATIONS, url.replace("postgresql://", "postgresql+asyncpg://"))
    env = {
        "VENTA_NATS_URL": nats_server.url,
        "VENTA_DATABASE_URL": url,
        "VENTA_SHUTDOWN_DELAY_S": str(DELAY_S),
        "VENTA_EVENT_LOOP": loop_name,
        "VENTA_GC_FREEZE": "false",
        "VENTA_GC_THRESHOLD": "700",
    }
    vendors = ServiceProcess("vendors", env, tmp_path / "vendors.log")
    vendors.start()
    try:
        await vendors.wait_ready()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{vendors.grpc_port}") as channel:
            stub, health = vendor_pb2_grpc.VendorServiceStub(channel), health_pb2_grpc.HealthStub(channel)
            assert vendors.proc is not None
            vendors.proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            created = await stub.CreateVendor(vendor_pb2.VendorCreateData(name="late", user_id=str(uuid.uuid4())))
            assert created.id  # still serving
            deadline, not_serving = time.monotonic() + DELAY_S, health_pb2.HealthCheckResponse.NOT_SERVING
            while (await health.Check(health_pb2.HealthCheckRequest())).status != not_serving:
                assert time.monotonic() < deadline, "gRPC health never said NOT_SERVING while draining"
                await asyncio.sleep(0.1)
        assert await asyncio.to_thread(vendors.proc.wait, 30) == 0
        assert ran_on(vendors, loop_name) == 0  # VENTA_GC_FREEZE=false
    finally:
        vendors.stop()
