"""Wires the user service: database, outbox + relay, a breaker-wrapped client of the vendor service, the gRPC host."""

from __future__ import annotations

from pathlib import Path

from services.contracts.venta.user.v1 import user_pb2, user_pb2_grpc
from services.contracts.venta.vendor.v1 import vendor_pb2_grpc
from services.event_catalog import CATALOG
from services.kit.db.session import Database
from services.kit.events.publishing import EventPublishing
from services.kit.grpc.client import PeerClient, make_breaker
from services.kit.grpc.server import GrpcServiceHost
from services.kit.grpc.tls import GrpcTls
from services.users.config import UserSettings
from services.users.servicer import UserServicer

MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_NAME = user_pb2.DESCRIPTOR.services_by_name["UserService"].full_name


def build(settings: UserSettings) -> GrpcServiceHost:
    db = Database(settings, application_name=settings.service_name)
    vendors = PeerClient(
        target_name="vendors",
        address=settings.vendors_addr,
        stub=vendor_pb2_grpc.VendorServiceStub,
        timeout_s=settings.grpc_timeout_s,
        breaker=make_breaker(
            "users->vendors", fail_max=settings.breaker_fail_max, reset_timeout_s=settings.breaker_reset_timeout_s
        ),
        tls=GrpcTls.from_settings(settings),
    )
    publishing = EventPublishing.for_service(settings, db, CATALOG, service=settings.service_name)
    servicer = UserServicer(db, vendors, publishing.outbox)
    host = GrpcServiceHost.from_settings(
        settings,
        register=lambda server: user_pb2_grpc.add_UserServiceServicer_to_server(servicer, server),
        service_names=[SERVICE_NAME],
        database=db,
        on_stop=[publishing.stop, vendors.close],
    )
    publishing.start()
    return host
