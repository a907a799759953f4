"""`venta up`: the whole platform on one machine, no cluster, one command.

Starts embedded PostgreSQL, NATS (JetStream) and Redis (or uses the URLs given), applies every migration, starts
each service as its own process (as Kubernetes would), waits until each reports ready, prints where each listens,
and on Ctrl-C stops services first (SIGTERM: they drain), then the servers. Data stays under `--data-dir`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from services.cli.registry import SERVICES, ServiceEntry
from services.devkit.servers import EmbeddedServer, Nats, Postgres, Redis
from services.kit.db.migrations import upgrade

DEFAULT_PORTS = {"postgres": 15432, "nats": 14222, "redis": 16379}


@dataclass
class Running:
    entry: ServiceEntry
    proc: subprocess.Popen[bytes]
    log: Path


def _step(message: str, started: float) -> None:
    print(f"  [{time.monotonic() - started:5.1f}s] {message}", flush=True)


def _with_database(url: str, database: str) -> str:
    head, _, _ = url.rstrip("/").rpartition("/")
    return f"{head}/{database}" if "@" in url or url.count("/") > 2 else f"{url.rstrip('/')}/{database}"


class LocalPlatform:
    def __init__(
        self,
        *,
        data_dir: Path,
        postgres_url: str | None = None,
        nats_url: str | None = None,
        redis_url: str | None = None,
        only: list[str] | None = None,
        port_offset: int = 0,
    ) -> None:
        self.offset = port_offset
        self.data_dir = data_dir.resolve()
        self.urls = {"postgres": postgres_url, "nats": nats_url, "redis": redis_url}
        self.entries = [e for name, e in SERVICES.items() if not only or name in only]
        self.servers: list[EmbeddedServer] = []
        self.running: list[Running] = []
        self.started = time.monotonic()

    # ---- infrastructure -------------------------------------------------------------------------------------
    def _start_servers(self) -> None:
        embedded: dict[str, type[EmbeddedServer]] = {"postgres": Postgres, "nats": Nats, "redis": Redis}
        for name, cls in embedded.items():
            if self.urls[name]:
                _step(f"{name}: using {self.urls[name]}", self.started)
                continue
            server = cls(self.data_dir / name, DEFAULT_PORTS[name] + self.offset)
            _step(f"{name}: starting (data in {server.data_dir})", self.started)
            server.start()
            self.servers.append(server)
            self.urls[name] = server.url
            _step(f"{name}: ready at {server.url}", self.started)

    def _database_url(self, entry: ServiceEntry) -> str:
        assert self.urls["postgres"] and entry.database
        return _with_database(self.urls["postgres"], entry.database)

    async def _migrate(self) -> None:
        for entry in self.entries:
            if entry.migrations is not None:
                settings = entry.settings(database_url=self._database_url(entry))
                await upgrade(entry.migrations, settings.dsn)  # type: ignore[attr-defined]
                _step(f"{entry.name}: migrations applied", self.started)

    # ---- services -------------------------------------------------------------------------------------------
    def _environment(self, entry: ServiceEntry) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            VENTA_HOST="127.0.0.1",
            VENTA_HTTP_PORT=str(entry.http_port + self.offset),
            VENTA_NATS_URL=self.urls["nats"] or "",
            VENTA_REDIS_URL=self.urls["redis"] or "",
            **{
                f"VENTA_{name.upper()}_ADDR": f"127.0.0.1:{e.grpc_port + self.offset}"
                for name, e in SERVICES.items()
                if e.grpc_port
            },
        )
        env.update(self._http_environment())
        if entry.grpc_port:
            env["VENTA_GRPC_PORT"] = str(entry.grpc_port + self.offset)
        if entry.database:
            env["VENTA_DATABASE_URL"] = self._database_url(entry)
        return env

    def _url_of(self, name: str) -> str:
        return f"http://127.0.0.1:{SERVICES[name].http_port + self.offset}"

    def _http_environment(self) -> dict[str, str]:
        """Where the HTTP side lives locally: the identity provider is the token issuer, uploads go to disk."""
        return {
            "VENTA_AUTH_ISSUER": self._url_of("identity"),
            "VENTA_IDENTITY_ISSUER": self._url_of("identity"),
            "VENTA_IDENTITY_KEY_DIR": str(self.data_dir / "identity" / "keys"),
            "VENTA_UPLOAD_DIR": str(self.data_dir / "uploads"),
            "VENTA_PUBLIC_URL": self._url_of("gateway"),
            "VENTA_NOTIFICATIONS_URL": self._url_of("notifications"),
            # the gateway queries the index search sync writes (the self-hosted provider's database)
            **(
                {"VENTA_SEARCH_DATABASE_URL": self._database_url(SERVICES["search-sync"])}
                if "search-sync" in SERVICES and SERVICES["search-sync"].database
                else {}
            ),
        }

    def _spawn(self, entry: ServiceEntry) -> Running:
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{entry.name}.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "serve", entry.name],
                env=self._environment(entry),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return Running(entry, proc, log_path)

    def _wait_ready(self, running: Running, timeout_s: float = 120.0) -> None:
        url = f"http://127.0.0.1:{running.entry.http_port + self.offset}/health/ready"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if running.proc.poll() is not None:
                tail = running.log.read_text(errors="replace").splitlines()[-15:]
                raise SystemExit(f"{running.entry.name} exited with {running.proc.returncode}:\n" + "\n".join(tail))
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"{running.entry.name} not ready after {timeout_s:.0f}s; see {running.log}")

    def _print_table(self) -> None:
        print("\nVenta is up:\n")
        print(f"  {'service':<14} {'gRPC':<18} {'health / metrics':<30} log")
        for r in self.running:
            grpc_addr = f"127.0.0.1:{r.entry.grpc_port + self.offset}" if r.entry.grpc_port else "-"
            http_addr = f"http://127.0.0.1:{r.entry.http_port + self.offset}"
            print(f"  {r.entry.name:<14} {grpc_addr:<18} {http_addr:<30} {r.log}")
        for name in ("postgres", "nats", "redis"):
            print(f"  {name:<14} {self.urls[name]}")
        if any(r.entry.name == "gateway" for r in self.running):
            print(f"\n  API: {self._url_of('gateway')}/docs   token: ./venta token --user <id>", end="")
            if self.offset:
                print(f" --identity-url {self._url_of('identity')}", end="")
            print()
        if any(r.entry.name == "websocket" for r in self.running):
            print(
                f"  Live map: {self._url_of('websocket')} (Socket.IO /user, /vendor)   "
                f"./venta watch --url {self._url_of('websocket')} --token <token> --viewport=S,W,N,E"
            )
        print(f"\nPress Ctrl-C to stop (data is kept in {self.data_dir}).\n", flush=True)

    # ---- lifecycle ------------------------------------------------------------------------------------------
    def start(self) -> None:
        print(f"Starting Venta locally (data: {self.data_dir})", flush=True)
        self._start_servers()
        asyncio.run(self._migrate())
        for entry in self.entries:
            running = self._spawn(entry)
            self.running.append(running)
            _step(f"{entry.name}: starting", self.started)
        for running in self.running:
            self._wait_ready(running)
            _step(f"{running.entry.name}: ready", self.started)

    def stop(self) -> None:
        for running in reversed(self.running):
            if running.proc.poll() is None:
                running.proc.send_signal(signal.SIGTERM)
        for running in reversed(self.running):
            try:
                running.proc.wait(20)
            except subprocess.TimeoutExpired:
                running.proc.kill()
        self.running.clear()
        for server in reversed(self.servers):
            server.stop()
        self.servers.clear()

    def run(self) -> None:
        stop = False

        def on_signal(*_: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            self.start()
            self._print_table()
            while not stop:
                for running in self.running:
                    if running.proc.poll() is not None:
                        print(f"{running.entry.name} exited with {running.proc.returncode}; see {running.log}")
                        stop = True
                time.sleep(0.3)
        finally:
            print("Stopping Venta...", flush=True)
            self.stop()
            print("Stopped.", flush=True)
