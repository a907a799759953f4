"""`venta up` as a developer runs it: servers, migrations, every service healthy, smoke calls, clean stop, data kept."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from services.cli.registry import SERVICES


def _start(data_dir: Path, offset: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "up", "--data-dir", str(data_dir), "--port-offset", str(offset)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _wait_up(proc: subprocess.Popen[str], timeout_s: float = 90) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            raise AssertionError("venta up exited:\n" + "".join(lines))
        lines.append(line)
        if line.startswith("Press Ctrl-C"):
            return lines
    raise AssertionError("venta up did not come up:\n" + "".join(lines))


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    return out


def test_venta_up_smoke_and_restart(tmp_path: Path) -> None:
    offset = random.randrange(1000, 16000, 10)  # every port stays below the ephemeral range (32768+)
    proc = _start(tmp_path / "data", offset)
    try:
        lines = _wait_up(proc)
        for entry in SERVICES.values():
            ready = httpx.get(f"http://127.0.0.1:{entry.http_port + offset}/health/ready", timeout=5)
            assert ready.status_code == 200, (entry.name, ready.text)
        assert any("vendors: ready" in line for line in lines)

        vendors = f"127.0.0.1:{SERVICES['vendors'].grpc_port + offset}"  # type: ignore[operator]
        smoke = subprocess.run([sys.executable, "-m", "services.cli", "smoke", "--vendors-addr", vendors],
                               capture_output=True, text=True, timeout=60)
        assert smoke.returncode == 0, smoke.stdout + smoke.stderr
        assert "venta.vendor.v1.VendorService" in smoke.stdout
        assert "updated as stranger: PERMISSION_DENIED" in smoke.stdout
        assert "deleted as owner: ok" in smoke.stdout
    finally:
        out = _stop(proc)
    assert proc.returncode == 0, out
    assert "Stopped." in out
    assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()  # data kept for the next start

    again = _start(tmp_path / "data", offset)  # second start reuses the data directory
    try:
        _wait_up(again)
    finally:
        _stop(again)
    assert again.returncode == 0
