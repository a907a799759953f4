"""The events benchmark keeps working: it runs in a tiny configuration and prints its ratio and latency lines."""

from __future__ import annotations

import subprocess
import sys

from tests.support.search_pipeline import ROOT


def test_events_pipeline_bench_prints_ratio() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "bench/events_pipeline.py",
            "--raw-messages",
            "2000",
            "--changes",
            "200",
            "--concurrency",
            "8",
            "--rate",
            "50",
            "--seconds",
            "2",
            "--vendors",
            "20",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ratio platform/raw: throughput" in done.stdout
    assert "change -> searchable at 50/s: p50" in done.stdout
    assert "dead-lettered 0" in done.stdout
