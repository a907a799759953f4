"""The benchmarks keep working: each runs in a tiny configuration and prints its ratio line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_grpc_get_vendor_bench_prints_ratio() -> None:
    done = subprocess.run(
        [sys.executable, "bench/grpc_get_vendor.py", "--requests", "200", "--concurrency", "4", "--vendors", "20"],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ratio gRPC/direct: throughput" in done.stdout
