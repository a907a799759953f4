"""Wires the vendor service together: database, outbox + relay, servicer, and the kit's gRPC host."""

from __future__ import annotations

from pathlib import Path

from services.contracts.venta.vendor.v1 import vendor_pb2, vendor_pb2_grpc
from services.event_catalog import CATALOG
from services.kit.db.session import Database
from services.kit.events.publishing import EventPublishing
from services.kit.grpc.server import GrpcServiceHost
from services.vendors.config import VendorSettings
from services.vendors.servicer import VendorServicer

MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_NAME = vendor_pb2.DESCRIPTOR.services_by_name["VendorService"].full_name


def build(settings: VendorSettings) -> GrpcServiceHost:
    """Build the host inside the running loop; the outbox relay starts at once and connects to NATS on its own."""
    db = Database(settings, application_name=settings.service_name)
    publishing = EventPublishing.for_service(settings, db, CATALOG, service=settings.service_name)
    servicer = VendorServicer(db, publishing.outbox)
    host = GrpcServiceHost.from_settings(
        settings,
        register=lambda server: vendor_pb2_grpc.add_VendorServiceServicer_to_server(servicer, server),
        service_names=[SERVICE_NAME],
        database=db,
        on_stop=[publishing.stop],
    )
    publishing.start()
    return host
