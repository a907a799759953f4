"""Service hosts for the integration tests: each started like production, on random ports, on real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from services.contracts.venta.location.v1 import location_pb2_grpc
from services.contracts.venta.user.v1 import user_pb2_grpc
from services.contracts.venta.vendor.v1 import vendor_pb2_grpc
from services.devkit.pytest_plugin import ServiceFactory
from services.devkit.servers import Postgres
from services.kit.grpc.server import GrpcServiceHost
from services.location import app as location_app
from services.location.config import LocationSettings
from services.users import app as users_app
from services.users.config import UserSettings
from services.vendors import app as vendors_app
from services.vendors.config import VendorSettings


@pytest.fixture
async def vendors_host(start_service: ServiceFactory, postgres: Postgres) -> GrpcServiceHost:
    return await start_service(vendors_app.build, VendorSettings, migrations=vendors_app.MIGRATIONS, postgres=postgres)


@pytest.fixture
async def location_host(start_service: ServiceFactory, postgres: Postgres) -> GrpcServiceHost:
    return await start_service(
        location_app.build, LocationSettings, migrations=location_app.MIGRATIONS, postgres=postgres
    )


@pytest.fixture
async def users_host(
    start_service: ServiceFactory, postgres: Postgres, vendors_host: GrpcServiceHost
) -> GrpcServiceHost:
    return await start_service(
        users_app.build,
        UserSettings,
        migrations=users_app.MIGRATIONS,
        postgres=postgres,
        vendors_addr=f"127.0.0.1:{vendors_host.grpc_port}",
    )


async def _channel(host: GrpcServiceHost) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(f"127.0.0.1:{host.grpc_port}")


@pytest.fixture
async def vendors(vendors_host: GrpcServiceHost) -> AsyncIterator[vendor_pb2_grpc.VendorServiceStub]:
    async with await _channel(vendors_host) as channel:
        yield vendor_pb2_grpc.VendorServiceStub(channel)


@pytest.fixture
async def location(location_host: GrpcServiceHost) -> AsyncIterator[location_pb2_grpc.LocationServiceStub]:
    async with await _channel(location_host) as channel:
        yield location_pb2_grpc.LocationServiceStub(channel)


@pytest.fixture
async def users(users_host: GrpcServiceHost) -> AsyncIterator[user_pb2_grpc.UserServiceStub]:
    async with await _channel(users_host) as channel:
        yield user_pb2_grpc.UserServiceStub(channel)
