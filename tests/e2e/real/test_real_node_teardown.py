"""The real node's teardown: nothing stays on the host, after a normal stop and after a killed test run.

Why a test: the node changes host-wide things (bridge, iptables rules, cgroups, sysctls, mounts) on developers' and
CI machines; a leftover rule would go on rewriting traffic, a leftover cgroup or mount would pile up run after run.
This restarts the session's node (it runs after test_real_node.py, and leaves a fresh node for any later test).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cluster.real_node import RealNode

pytestmark = [pytest.mark.realnode, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]  # `python -m tests.cluster.real_node` runs from the repository root


def test_stop_leaves_nothing_and_a_killed_run_is_reaped_by_the_next_start(real_node: RealNode) -> None:
    real_node.stop()
    print(f"teardown in {real_node.timings['teardown']}s")
    assert real_node.leftovers() == []

    # A test run killed with SIGKILL: its node's processes, rules and mounts stay behind.
    orphan = subprocess.Popen(
        [sys.executable, "-m", "tests.cluster.real_node"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert orphan.stdout is not None
        first_line = orphan.stdout.readline()  # "export KUBECONFIG=..." once the node is Ready
        assert first_line.startswith("export KUBECONFIG="), orphan.communicate(timeout=10)[1]
    finally:
        orphan.send_signal(signal.SIGKILL)
        orphan.wait()
    assert real_node.leftovers() != []

    started = time.monotonic()
    real_node.start()
    print(f"reaped the killed run's node and started again in {time.monotonic() - started:.1f}s")
    assert real_node.kubectl("get", "node", "-o", "name").stdout.split() == ["node/venta-realnode"]
