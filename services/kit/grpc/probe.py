"""Readiness of a peer as its own grpc.health.v1 service reports it, over the caller's existing channel.

A process that calls peers (the HTTP gateway, the identity provider) is only ready when they are: asking the peer's
standard health service tests the network path, the peer process and the peer's own dependencies at once.
"""

from __future__ import annotations

from typing import Any

from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.kit.grpc.client import PeerClient
from services.kit.probes import ReadinessCheck


class PeerNotServing(Exception):
    """The peer answered its health check with a status other than SERVING."""


def peer_health(client: PeerClient[Any], service: str, *, timeout_s: float = 1.0) -> ReadinessCheck:
    stub = health_pb2_grpc.HealthStub(client.channel)

    async def check() -> None:
        answer = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        if answer.status != health_pb2.HealthCheckResponse.SERVING:
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
            raise PeerNotServing(f"{client.target_name}: {status}")

    return check
