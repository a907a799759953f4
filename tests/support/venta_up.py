"""`venta up` as the developer runs it, for the tests that need the whole local platform as real processes."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from services.cli.registry import SERVICES
from services.cli.up import DEFAULT_PORTS

ROOT = Path(__file__).resolve().parents[2]


def free_port_offset(services: Iterable[str] = SERVICES) -> int:
    """A `--port-offset` whose every port is free now (other platforms may be running on this machine); every port
    stays below the ephemeral range (32768+)."""
    for _ in range(50):
        offset = random.randrange(1000, 16000, 10)
        ports = [
            *DEFAULT_PORTS.values(),
            *(p for name in services for p in (SERVICES[name].http_port, SERVICES[name].grpc_port) if p),
        ]
        try:
            for port in ports:
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port + offset))
        except OSError:
            continue
        return offset
    raise AssertionError("no free port offset")


def start(data_dir: Path, offset: int, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "up", "--data-dir", str(data_dir), "--port-offset", str(offset), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**(env if env is not None else os.environ), "PYTHONUNBUFFERED": "1"},
    )


def wait_up(proc: subprocess.Popen[str], timeout_s: float = 150) -> str:
    """Its output up to "Press Ctrl-C" (every service ready); AssertionError with the output if it never gets there."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            raise AssertionError("venta up exited:\n" + "".join(lines))
        lines.append(line)
        if line.startswith("Press Ctrl-C"):
            return "".join(lines)
    raise AssertionError("venta up did not come up:\n" + "".join(lines))
