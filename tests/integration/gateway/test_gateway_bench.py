"""The gateway benchmark keeps working: it runs in a tiny configuration and prints its ratio lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_gateway_read_bench_prints_ratios() -> None:
    done = subprocess.run(
        [sys.executable, "bench/gateway_read.py", "--requests", "150", "--concurrency", "4"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ratio cold/bare: throughput" in done.stdout
    assert "ratio cached/bare: throughput" in done.stdout
