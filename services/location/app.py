"""Wires the location service together."""

from __future__ import annotations

from pathlib import Path

from services.contracts.venta.location.v1 import location_pb2, location_pb2_grpc
from services.kit.db.session import Database
from services.kit.grpc.server import GrpcServiceHost
from services.location.config import LocationSettings
from services.location.servicer import LocationServicer

MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_NAME = location_pb2.DESCRIPTOR.services_by_name["LocationService"].full_name


def build(settings: LocationSettings) -> GrpcServiceHost:
    db = Database(settings, application_name=settings.service_name)
    servicer = LocationServicer(db, max_results=settings.max_results)
    return GrpcServiceHost.from_settings(
        settings,
        register=lambda server: location_pb2_grpc.add_LocationServiceServicer_to_server(servicer, server),
        service_names=[SERVICE_NAME],
        database=db,
    )
