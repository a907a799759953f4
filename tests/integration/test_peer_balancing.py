"""A peer's calls spread over every replica of a gRPC service, and survive connections recycled or a replica leaving.

In a cluster the kit's client resolves a headless Service (one address per ready pod; tests/e2e/real shows that
path); here two real `venta serve vendors` processes on the same database stand in for the pods, behind a
multi-address target. Each replica's own /metrics says how many calls it answered.
"""

from __future__ import annotations

import asyncio
import urllib.request
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.contracts.venta.vendor.v1 import vendor_pb2, vendor_pb2_grpc
from services.devkit.servers import Nats, Postgres
from services.kit.db.migrations import upgrade
from services.kit.grpc.client import PeerClient, make_breaker
from services.vendors import app as vendors_app
from tests.support.service_process import ServiceProcess

pytestmark = pytest.mark.slow


def served(replica: ServiceProcess, method: str) -> float:
    """Calls of `method` this replica answered, from its own /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{replica.http_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "venta_grpc_server_requests_total" and s.labels.get("method") == method
    )


async def test_calls_spread_over_replicas_and_survive_recycling_and_a_leaving_replica(
    nats_server: Nats, postgres: Postgres, tmp_path: Path
) -> None:
    url = postgres.url_for(f"vendors_{uuid.uuid4().hex[:8]}")
    await upgrade(vendors_app.MIGRATIONS, url.replace("postgresql://", "postgresql+asyncpg://"))
    # a short connection age, to see connections recycled during the test (production: 120 s)
    env = {"VENTA_NATS_URL": nats_server.url, "VENTA_DATABASE_URL": url, "VENTA_GRPC_MAX_CONNECTION_AGE_S": "1"}
    replicas = [ServiceProcess("vendors", env, tmp_path / f"vendors-{i}.log") for i in range(2)]
    first, second = replicas
    for replica in (first, second):
        replica.start()
    target = f"ipv4:127.0.0.1:{first.grpc_port},127.0.0.1:{second.grpc_port}"
    client = PeerClient(
        target_name="vendors",
        address=target,
        stub=vendor_pb2_grpc.VendorServiceStub,
        timeout_s=5,
        breaker=make_breaker("test->vendors", fail_max=5, reset_timeout_s=30),
    )
    try:
        await asyncio.gather(first.wait_ready(), second.wait_ready())
        created = await client.unary(
            client.stub.CreateVendor, vendor_pb2.VendorCreateData(name="Tacos", user_id=str(uuid.uuid4()))
        )
        for _ in range(40):
            await client.unary(client.stub.GetVendorById, vendor_pb2.VendorLookupByIdData(id=created.id))
        counts = [served(r, "GetVendorById") for r in (first, second)]
        assert sum(counts) == 40 and min(counts) >= 10, counts  # round robin, not one connection's replica

        # connections recycled every second (GOAWAY after the max connection age) cost no call either
        loop = asyncio.get_running_loop()
        until = loop.time() + 3
        while loop.time() < until:
            await client.unary(client.stub.GetVendorById, vendor_pb2.VendorLookupByIdData(id=created.id))

        # one replica stopping (SIGTERM: it drains) costs no call: the others take them at once
        second.stop()
        for _ in range(20):
            await client.unary(client.stub.GetVendorById, vendor_pb2.VendorLookupByIdData(id=created.id))
    finally:
        await client.close()
        for replica in replicas:
            replica.stop()
