"""The benchmarks keep working: each runs in a tiny configuration and prints its ratio line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_grpc_get_vendor_bench_prints_ratio() -> None:
    done = subprocess.run(
        [sys.executable, "bench/grpc_get_vendor.py", "--requests", "200", "--concurrency", "4", "--vendors", "20"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ratio gRPC/direct: throughput" in done.stdout


def test_observability_cost_bench_prints_ratios() -> None:
    done = subprocess.run(
        [sys.executable, "bench/observability_cost.py", "--requests", "100", "--concurrency", "4", "--rounds", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ratio on/off cold: throughput" in done.stdout
    assert "ratio on/off cached: throughput" in done.stdout
    exported = int(done.stdout.split("collector: received ", 1)[1].split(" ", 1)[0])
    assert exported > 0, "the traced platform exported its spans"


def test_websocket_fanout_bench_prints_ratios() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "bench/websocket_fanout.py",
            "--watchers",
            "20",
            "--updates",
            "10",
            "--rate",
            "10",
            "--port-offset",
            "7300",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "delivered 200/200" in done.stdout, done.stdout  # both rounds, every delivery
    assert "ratio venta/bare: deliveries/s" in done.stdout
