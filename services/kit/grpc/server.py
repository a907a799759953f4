"""The async gRPC server every service runs: servicers + health + reflection + interceptors + side HTTP port.

`GrpcServiceHost` keeps the host contract (`services.kit.lifecycle.Host`): tests call `start()`/`stop()` (random
ports when given 0); the CLI calls `serve(host)`, which serves until SIGTERM/SIGINT, then drains: readiness turns
red and gRPC health says NOT_SERVING while calls are still served for the drain delay; then new calls are refused
(clients get GOAWAY), in-flight calls get `shutdown_grace_s` to finish, and dependencies are closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.kit.db.session import Database
from services.kit.grpc.interceptors import ServerInterceptor
from services.kit.grpc.tls import GrpcTls
from services.kit.lifecycle import close_all
from services.kit.probes import HealthServer, ReadinessCheck, run_checks
from services.kit.telemetry import grpc_tracer

log = logging.getLogger("venta.grpc")

MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class GrpcServiceHost:
    def __init__(
        self,
        *,
        service: str,
        register: Callable[[grpc.aio.Server], None],
        service_names: Sequence[str],
        checks: Mapping[str, ReadinessCheck],
        host: str,
        grpc_port: int,
        http_port: int,
        shutdown_grace_s: float = 10.0,
        on_stop: Sequence[Callable[[], Awaitable[object]]] = (),
        health_poll_s: float = 2.0,
        max_connection_age_s: float = 120.0,
        shutdown_delay_s: float = 0.0,
        database: Database | None = None,
        tls: GrpcTls | None = None,
    ) -> None:
        """`database`, when the service has one, is a readiness check (`postgres`) and is closed last on stop;
        `tls`, mutual TLS on the gRPC port (the HTTP side port stays plaintext for probes and scrapes)."""
        if database is not None:
            checks = {"postgres": database.ping, **checks}
            on_stop = [*on_stop, database.close]
        self.service = service
        self.database = database
        self.service_names = list(service_names)
        self.checks = checks
        self.grace = shutdown_grace_s
        self.drain_delay_s = shutdown_delay_s
        self.on_stop = list(on_stop)
        self.health_poll_s = health_poll_s
        self.server = grpc.aio.server(
            interceptors=[ServerInterceptor(service, grpc_tracer())],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
                ("grpc.max_connection_age_ms", int(max_connection_age_s * 1000)),
                ("grpc.max_connection_age_grace_ms", int(shutdown_grace_s * 1000)),
            ],
        )
        register(self.server)
        self.health = health.aio.HealthServicer()  # type: ignore[attr-defined]
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        address = f"{host}:{grpc_port}"
        self.tls = tls
        self.grpc_port = (
            self.server.add_secure_port(address, tls.server_credentials())
            if tls is not None
            else self.server.add_insecure_port(address)
        )
        self.http = HealthServer(service=service, checks=checks, host=host, port=http_port)
        self._watch: asyncio.Task[None] | None = None
        self._drain_health: asyncio.Future[None] | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Any,
        *,
        register: Callable[[grpc.aio.Server], None],
        service_names: Sequence[str],
        checks: Mapping[str, ReadinessCheck] | None = None,
        on_stop: Sequence[Callable[[], Awaitable[object]]] = (),
        database: Database | None = None,
    ) -> GrpcServiceHost:
        """A host on the settings' host/ports/grace (settings combine KitSettings and GrpcSettings)."""
        return cls(
            service=settings.service_name,
            register=register,
            service_names=service_names,
            checks=checks or {},
            host=settings.host,
            grpc_port=settings.grpc_port,
            http_port=settings.http_port,
            shutdown_grace_s=settings.shutdown_grace_s,
            on_stop=on_stop,
            max_connection_age_s=settings.grpc_max_connection_age_s,
            shutdown_delay_s=settings.shutdown_delay_s,
            database=database,
            tls=GrpcTls.from_settings(settings),
        )

    @property
    def http_port(self) -> int:
        return self.http.port

    @property
    def database_url(self) -> str:
        """The service's own database, for tests and tools that check it from outside the service."""
        if self.database is None:
            raise AttributeError(f"{self.service} has no database")
        return self.database.url

    async def start(self) -> None:
        await self.server.start()
        await self.http.start()
        await self._publish_health()
        self._watch = asyncio.create_task(self._watch_health(), name=f"{self.service}-health")
        log.info(
            "%s serving gRPC%s on :%d, HTTP on :%d",
            self.service,
            " (mutual TLS)" if self.tls is not None else "",
            self.grpc_port,
            self.http_port,
            extra={"grpc_port": self.grpc_port, "http_port": self.http_port, "grpc_tls": self.tls is not None},
        )

    async def _publish_health(self) -> None:
        """Mirror the readiness checks into grpc.health.v1 so gRPC-native probes see the same truth."""
        results = await run_checks(self.service, self.checks, timeout_s=2.0)
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if not self.http.draining and all(v == "ok" for v in results.values())
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *self.service_names]:
            await self.health.set(name, status)

    async def _watch_health(self) -> None:
        while True:
            await asyncio.sleep(self.health_poll_s)
            try:
                await self._publish_health()
            except Exception:
                log.exception("health update failed")

    async def stop(self) -> None:
        self.http.draining = True
        if self._watch is not None:
            self._watch.cancel()
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.grace)
        await self.http.stop()
        await close_all(self.on_stop, owner=self.service)
        log.info("%s stopped", self.service)

    def drain(self) -> None:
        """Not ready from now on (HTTP readiness and gRPC health), still serving: see `services.kit.lifecycle`."""
        self.http.draining = True
        self._drain_health = asyncio.ensure_future(self._publish_health())
