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

import asyncpg
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


async def test_replicas_stopping_under_continuous_writes_fail_no_write(
    nats_server: Nats, postgres: Postgres, tmp_path: Path
) -> None:
    """A rollout on the real node once failed a write: a CreateVendor that reached the old replica as it stopped
    was CANCELLED (grpc/grpc#41785: a server shutting down cancels the calls it has received but not yet started).
    Here replicas are replaced one by one, each drained then stopped, while writers keep calling: no call fails,
    and no write is made twice."""
    url = postgres.url_for(f"vendors_{uuid.uuid4().hex[:8]}")
    await upgrade(vendors_app.MIGRATIONS, url.replace("postgresql://", "postgresql+asyncpg://"))
    env = {"VENTA_NATS_URL": nats_server.url, "VENTA_DATABASE_URL": url, "VENTA_SHUTDOWN_DELAY_S": "0.5"}
    replicas = [ServiceProcess("vendors", env, tmp_path / f"vendors-{i}.log") for i in range(5)]
    for replica in replicas:
        replica.start()
    client = PeerClient(
        target_name="vendors",
        address="ipv4:" + ",".join(f"127.0.0.1:{replica.grpc_port}" for replica in replicas),
        stub=vendor_pb2_grpc.VendorServiceStub,
        timeout_s=1,
        breaker=make_breaker("test->vendors-stops", fail_max=1000, reset_timeout_s=30),
    )
    created: list[str] = []
    failures: list[BaseException] = []
    writing = True

    async def write_continuously() -> None:
        while writing:
            try:
                answer = await client.unary(
                    client.stub.CreateVendor, vendor_pb2.VendorCreateData(name="Tacos", user_id=str(uuid.uuid4()))
                )
                created.append(answer.id)
            except Exception as exc:  # every failure is the finding
                failures.append(exc)

    try:
        await asyncio.gather(*(replica.wait_ready() for replica in replicas))
        writers = [asyncio.create_task(write_continuously()) for _ in range(32)]
        await asyncio.sleep(0.5)
        for leaving in replicas[:-1]:
            assert served(leaving, "CreateVendor") > 0  # it took writes until its stop signal
            await asyncio.to_thread(leaving.stop)
            await asyncio.sleep(0.3)
        writing = False
        await asyncio.gather(*writers)
        assert not failures, [str(f) for f in failures[:3]]
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetchval("SELECT count(*) FROM vendor")
        finally:
            await conn.close()
        assert len(created) > 100 and rows == len(set(created)) == len(created)  # each write made once
    finally:
        writing = False
        await client.close()
        for replica in replicas:
            replica.stop()
