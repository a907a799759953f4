"""Building the breaker-wrapped client of one peer from a service's settings, the same way in every edge.

A breaker is named `<service>-><peer>` (the label of `venta_breaker_state`). With `breaker_redis` on, its state lives
in Redis (pybreaker's CircuitRedisStorage), so every replica opens and closes it together instead of each one
paying for the failures again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import grpc
import pybreaker

from services.kit.grpc.client import PeerClient, make_breaker
from services.kit.grpc.tls import GrpcTls, TlsSettings
from services.kit.redis_client import sync_redis


class PeerSettings(TlsSettings, Protocol):
    @property
    def service_name(self) -> str: ...
    @property
    def grpc_timeout_s(self) -> float: ...
    @property
    def breaker_fail_max(self) -> int: ...
    @property
    def breaker_reset_timeout_s(self) -> float: ...
    @property
    def breaker_redis(self) -> bool: ...
    @property
    def redis_dsn(self) -> str: ...
    @property
    def redis_timeout_s(self) -> float: ...


def breaker_for(settings: PeerSettings, peer: str) -> pybreaker.CircuitBreaker:
    name = f"{settings.service_name}->{peer}"
    storage = None
    if settings.breaker_redis:
        client = sync_redis(settings.redis_dsn, timeout_s=settings.redis_timeout_s)
        storage = pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, client, namespace=f"venta:breaker:{name}")
    return make_breaker(
        name,
        fail_max=settings.breaker_fail_max,
        reset_timeout_s=settings.breaker_reset_timeout_s,
        state_storage=storage,
    )


StubT = TypeVar("StubT")


def peer_client(
    settings: PeerSettings, peer: str, address: str, stub: Callable[[grpc.aio.Channel], StubT]
) -> PeerClient[StubT]:
    return PeerClient(
        target_name=peer,
        address=address,
        stub=stub,
        timeout_s=settings.grpc_timeout_s,
        breaker=breaker_for(settings, peer),
        tls=GrpcTls.from_settings(settings),
    )


def grpc_service_name(module: Any, service: str) -> str:
    """The full name of a service in a generated `*_pb2` module (what grpc.health.v1 is asked about)."""
    return str(module.DESCRIPTOR.services_by_name[service].full_name)
