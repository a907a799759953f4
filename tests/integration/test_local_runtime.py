"""`venta up` as a developer runs it: servers, migrations, every service healthy, smoke calls, clean stop, data kept."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx

from services.cli.registry import SERVICES
from tests.support import venta_up


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=90)
    return out


def test_venta_up_smoke_and_restart(tmp_path: Path) -> None:
    # eight Python processes start at once on two cores: about 45 s on a loaded machine, hence the generous waits
    offset = venta_up.free_port_offset()
    proc = venta_up.start(tmp_path / "data", offset)
    try:
        lines = venta_up.wait_up(proc, timeout_s=180)
        for entry in SERVICES.values():
            ready = httpx.get(f"http://127.0.0.1:{entry.http_port + offset}/health/ready", timeout=5)
            assert ready.status_code == 200, (entry.name, ready.text)
        assert "vendors: ready" in lines

        vendors = f"127.0.0.1:{SERVICES['vendors'].grpc_port + offset}"  # type: ignore[operator]
        smoke = subprocess.run(
            [sys.executable, "-m", "services.cli", "smoke", "--vendors-addr", vendors],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert smoke.returncode == 0, smoke.stdout + smoke.stderr
        assert "venta.vendor.v1.VendorService" in smoke.stdout
        assert "updated as stranger: PERMISSION_DENIED" in smoke.stdout
        assert "deleted as owner: ok" in smoke.stdout
    finally:
        out = _stop(proc)
    assert proc.returncode == 0, out
    assert "Stopped." in out
    assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()  # data kept for the next start

    again = venta_up.start(tmp_path / "data", offset)  # second start reuses the data directory
    try:
        venta_up.wait_up(again, timeout_s=180)
    finally:
        _stop(again)
    assert again.returncode == 0
