"""Runs an ASGI app (FastAPI) under uvicorn the way `GrpcServiceHost` runs a gRPC service.

It keeps the host contract (`services.kit.lifecycle.Host`): tests call `start()`/`stop()` (port 0 gives a random
port, read back into `port`); the CLI calls `serve(host)`: serve until SIGTERM/SIGINT, then drain: readiness
answers 503 and every response says `Connection: close`, so clients leave their kept-alive connections for another
replica instead of meeting a closed one, while requests are still served for the drain delay; then no new
connections are accepted, in-flight requests get `shutdown_grace_s`, and the app's lifespan closes its clients.
uvicorn's own signal capture is off so that signals are handled in one place and several hosts can share one process
in tests. Server spans are the kit's request middleware's (`services.kit.http.middleware.RequestContextMiddleware`);
FastAPI's own telemetry is turned off where each app is built (`FastAPI(telemetry=fastapi_telemetry())`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Generator

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.kit.config import KitSettings

log = logging.getLogger("venta.http")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class AsgiServiceHost:
    def __init__(
        self,
        *,
        service: str,
        app: ASGIApp,
        host: str,
        port: int,
        shutdown_grace_s: float = 10.0,
        shutdown_delay_s: float = 0.0,
        forwarded_allow_ips: str | None = None,
    ) -> None:
        self.service = service
        self.app = app
        self.host = host
        self.port = port
        self.grace = shutdown_grace_s
        self.drain_delay_s = shutdown_delay_s
        self.draining = False
        self._config = uvicorn.Config(
            self._closing_when_draining,
            interface="asgi3",  # a bound method: uvicorn's guess would take it for ASGI 2
            host=host,
            port=port,
            lifespan="on",
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=forwarded_allow_ips is not None,
            forwarded_allow_ips=forwarded_allow_ips,
            timeout_graceful_shutdown=int(max(1, shutdown_grace_s)),
            timeout_keep_alive=15,
        )
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(
        cls, settings: KitSettings, app: ASGIApp, *, forwarded_allow_ips: str | None = None
    ) -> AsgiServiceHost:
        """The host `venta serve <name>` runs for an HTTP service: name, address and grace from its settings."""
        return cls(
            service=settings.service_name,
            app=app,
            host=settings.host,
            port=settings.http_port,
            shutdown_grace_s=settings.shutdown_grace_s,
            shutdown_delay_s=settings.shutdown_delay_s,
            forwarded_allow_ips=forwarded_allow_ips,
        )

    async def _closing_when_draining(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app, plus `Connection: close` on every HTTP response once draining."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and self.draining:
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_closing)

    @property
    def http_port(self) -> int:
        return self.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout_s: float = 30.0) -> None:
        self._server = _Server(self._config)
        self._task = asyncio.create_task(self._server.serve(), name=f"{self.service}-http")
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what failed start-up
                raise RuntimeError(f"{self.service} exited during start-up")
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{self.service} not started after {timeout_s:.0f}s")
            await asyncio.sleep(0.01)
        sockets = self._server.servers[0].sockets
        self.port = int(sockets[0].getsockname()[1])
        log.info("%s serving HTTP on :%d", self.service, self.port, extra={"http_port": self.port})

    def drain(self) -> None:
        """Not ready, and `Connection: close` on every response, from now on; still serving."""
        self.draining = True
        state = getattr(self.app, "state", None)
        if state is not None:
            state.draining = True  # read by the readiness route (`services.kit.probes`)

    async def stop(self) -> None:
        self.drain()
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), self.grace + 5)
        except TimeoutError:
            self._server.force_exit = True
            await self._task
        self._server = self._task = None
        log.info("%s stopped", self.service)

    async def ended(self) -> None:
        """Returns when uvicorn ends by itself (`serve()` then stops the host too)."""
        assert self._task is not None
        await asyncio.shield(self._task)
