"""`venta serve NAME` as a real child process on random ports, for tests that need real processes: to SIGKILL one
mid-flow, or to run several replicas of one service side by side."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from services.devkit.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


class ServiceProcess:
    """`venta serve NAME` as a real child process, to be SIGKILLed by a fault test."""

    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.env = {
            **os.environ,
            "VENTA_HOST": "127.0.0.1",
            "VENTA_HTTP_PORT": str(self.http_port),
            "VENTA_GRPC_PORT": str(self.grpc_port),
            "VENTA_SHUTDOWN_GRACE_S": "2",
            **env,
        }
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, **env: str) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "serve", self.name],
                cwd=ROOT,
                env={**self.env, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def wait_ready(self, path: str = "/health/ready", timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited: {self.log.read_text()[-3000:]}")
            try:
                body = await asyncio.to_thread(self.get, path)
                if body is not None:
                    return
            except OSError:
                pass
            await asyncio.sleep(0.2)
        raise AssertionError(f"{self.name} not ready: {self.log.read_text()[-3000:]}")

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=2) as response:
            return json.loads(response.read())

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
