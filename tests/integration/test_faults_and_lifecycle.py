"""What operators rely on: health endpoints, gRPC health + reflection, PostgreSQL dying and coming back, draining."""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.contracts.venta.vendor.v1 import vendor_pb2 as pb
from services.contracts.venta.vendor.v1 import vendor_pb2_grpc
from services.devkit.pytest_plugin import ServiceFactory
from services.devkit.servers import Postgres
from services.kit.grpc.server import GrpcServiceHost
from services.vendors import app as vendors_app
from services.vendors.config import VendorSettings
from tests.support.databases import connect_to_database_of


async def test_health_metrics_and_reflection(
    vendors_host: GrpcServiceHost, vendors: vendor_pb2_grpc.VendorServiceStub
) -> None:
    await vendors.CreateVendor(pb.VendorCreateData(name="m", user_id=str(uuid.uuid4())))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{vendors_host.http_port}") as http:
        assert (await http.get("/health")).json()["status"] == "ok"
        ready = await http.get("/health/ready")
        assert ready.status_code == 200 and ready.json()["checks"] == {"postgres": "ok"}
        metrics = (await http.get("/metrics")).text
    assert 'venta_grpc_server_requests_total{code="OK",method="CreateVendor",service="vendors"}' in metrics
    assert "venta_grpc_server_request_duration_seconds_bucket" in metrics

    async with grpc.aio.insecure_channel(f"127.0.0.1:{vendors_host.grpc_port}") as channel:
        check = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=vendors_app.SERVICE_NAME)
        )
        assert check.status == health_pb2.HealthCheckResponse.SERVING
        stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = {s.name async for r in stream for s in r.list_services_response.service}
    assert {vendors_app.SERVICE_NAME, "grpc.health.v1.Health"} <= names


async def test_postgres_killed_then_restarted(start_service: ServiceFactory, fresh_postgres: Postgres) -> None:
    host = await start_service(
        vendors_app.build,
        VendorSettings,
        migrations=vendors_app.MIGRATIONS,
        postgres=fresh_postgres,
        database="venta_vendors",
    )
    ready_url = f"http://127.0.0.1:{host.http_port}/health/ready"
    owner = str(uuid.uuid4())
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.grpc_port}") as channel, httpx.AsyncClient() as http:
        stub = vendor_pb2_grpc.VendorServiceStub(channel)
        vid = (await stub.CreateVendor(pb.VendorCreateData(name="before", user_id=owner))).id
        read = pb.VendorLookupByIdData(id=vid)
        # several connections open in each pool (reads use asyncpg's, writes SQLAlchemy's): all die with the server
        await asyncio.gather(*(stub.GetVendorById(read) for _ in range(8)))

        fresh_postgres.kill()
        not_ready = await http.get(ready_url)
        assert not_ready.status_code == 503 and not_ready.json()["checks"]["postgres"].startswith("failing")
        deadline_s = 5.0
        started = time.monotonic()
        try:
            await stub.GetVendorById(read, timeout=deadline_s)
            raise AssertionError("a read succeeded with PostgreSQL down")
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE, (exc.code(), exc.details())
        assert time.monotonic() - started < deadline_s  # answered within the deadline, not by it

        fresh_postgres.start()  # same data directory: the vendor is still there
        for _ in range(50):
            if (await http.get(ready_url)).status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert (await http.get(ready_url)).status_code == 200
        # the dead connections are noticed and replaced: no read after the restart fails
        answers = await asyncio.gather(*(stub.GetVendorById(read) for _ in range(8)))
        assert {a.vendor.name for a in answers} == {"before"}
        update = pb.VendorUpdateData(id=vid, user_id=owner, name="after the restart")
        assert (await stub.UpdateVendor(update)).success
        assert (await stub.CreateVendor(pb.VendorCreateData(name="after", user_id=owner))).id


async def test_a_column_added_while_the_service_runs_breaks_none_of_its_prepared_statements(
    vendors_host: GrpcServiceHost, vendors: vendor_pb2_grpc.VendorServiceStub
) -> None:
    """An expanding migration applied while replicas of the previous version serve (a rolling upgrade): the hot paths'
    statements, prepared on every pooled connection, name their columns, so a new column changes none of them."""
    owner = str(uuid.uuid4())
    vid = (await vendors.CreateVendor(pb.VendorCreateData(name="v1", user_id=owner))).id

    async def read_and_write(n: int) -> None:
        await asyncio.gather(
            *(vendors.GetVendorById(pb.VendorLookupByIdData(id=vid)) for _ in range(8)),
            *(vendors.UpdateVendor(pb.VendorUpdateData(id=vid, user_id=owner, name=f"v{n}-{i}")) for i in range(4)),
            vendors.SetVendorOpen(pb.VendorOpenData(id=vid, user_id=owner, open=True)),
            vendors.SetVendorPosition(pb.VendorPositionData(id=vid, user_id=owner, lat=1.5, long=2.5)),
        )

    await read_and_write(1)  # every statement prepared on several connections
    conn = await connect_to_database_of(vendors_host)
    try:
        await conn.execute("ALTER TABLE vendor ADD COLUMN added_later text")
    finally:
        await conn.close()
    await read_and_write(2)  # none fails
    vendor = (await vendors.GetVendorById(pb.VendorLookupByIdData(id=vid))).vendor
    assert (vendor.open, vendor.lat, vendor.long) == (True, 1.5, 2.5) and vendor.name.startswith("v2-")


async def test_the_hot_paths_connections_go_back_to_the_pool_without_a_reset_round_trip(
    vendors_host: GrpcServiceHost, vendors: vendor_pb2_grpc.VendorServiceStub
) -> None:
    """asyncpg's pool would send `... UNLISTEN *; RESET ALL;` on every release, a round trip per call; the hot paths
    leave no session state, so their pool sends nothing: each connection's last statement is the call's own."""
    owner = str(uuid.uuid4())
    vid = (await vendors.CreateVendor(pb.VendorCreateData(name="r", user_id=owner))).id
    await asyncio.gather(
        *(vendors.GetVendorById(pb.VendorLookupByIdData(id=vid)) for _ in range(4)),
        vendors.UpdateVendor(pb.VendorUpdateData(id=vid, user_id=owner, name="r2")),
    )
    conn = await connect_to_database_of(vendors_host)
    try:
        last = [
            row["query"]
            for row in await conn.fetch(
                "SELECT query FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND backend_type = 'client backend'"
            )
        ]
    finally:
        await conn.close()
    assert not [q for q in last if "RESET ALL" in q], last
    assert [q for q in last if q.startswith("SELECT") and "FROM vendor WHERE id = $1" in q], last  # the read's
    assert "COMMIT;" in last or "COMMIT" in last, last  # the write's transaction, ended by its own COMMIT


async def test_stop_finishes_in_flight_calls(start_service: ServiceFactory, postgres: Postgres) -> None:
    host = await start_service(vendors_app.build, VendorSettings, migrations=vendors_app.MIGRATIONS, postgres=postgres)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.grpc_port}") as channel:
        stub = vendor_pb2_grpc.VendorServiceStub(channel)
        owner = str(uuid.uuid4())
        calls = [
            asyncio.ensure_future(stub.CreateVendor(pb.VendorCreateData(name=f"n{i}", user_id=owner)))
            for i in range(30)
        ]
        await asyncio.sleep(0.01)  # calls are on the wire
        await host.stop()
        results = await asyncio.gather(*calls, return_exceptions=True)
    created = {r.id for r in results if isinstance(r, pb.VendorCreateResponse)}
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    # every call either completed or was refused before its handler ran: none was cut off halfway
    assert len(created) + len(refused) == len(calls)
    assert {r.code() for r in refused} <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
    assert created
    conn = await connect_to_database_of(host)
    try:
        rows = await conn.fetch("SELECT id FROM vendor WHERE owner_id = $1", uuid.UUID(owner))
    finally:
        await conn.close()
    stored = {str(row["id"]) for row in rows}
    assert stored == created  # what clients were told was written is exactly what was written
