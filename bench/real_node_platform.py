"""The platform on a real node: apply -> Ready, and a version rollout under load (failed requests, latency).

What an SRE waits for and what users feel. On the real single-node cluster of the tests (tests/cluster/real_node.py:
real kubelet, containerd, kube-proxy, CoreDNS; images built from the Dockerfile), the README's install commands run
with a stopwatch; then a request loop (create + read a vendor through the gateway's Service, one client, as the e2e
does) runs through `spec.version` changing to a second image.

Peers measured in the same run, on the same machine: the same services started by `./venta up` as local processes
(apply -> Ready vs. process start -> ready: what Kubernetes, the images and the operator's stages add), and the same
request loop for the same time with no rollout (latency during a rollout vs. at rest).

Usage: `.venv/bin/python bench/real_node_platform.py [--loop-seconds 30]` (root; builds what is missing first:
tests/cluster/build.sh and tests/cluster/images/build.sh; a real node must not be running already).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test helpers (tests.cluster, tests.support) when run as a script

from tests.cluster.cluster_tools import build_tools  # noqa: E402
from tests.cluster.local_images import build_images  # noqa: E402
from tests.cluster.real_node import RealNode  # noqa: E402
from tests.support.operator_e2e import wait_for  # noqa: E402
from tests.support.platform_e2e import Installer, Outcomes, Platform, RequestLoop, chart_values_for, example_for  # noqa: E402
from tests.support.venta_up import free_port_offset, start, wait_up  # noqa: E402

TAG, NEXT_TAG = "0.1.0-bench.1", "0.1.0-bench.2"


class Images:
    def __init__(self, built: Any) -> None:
        self.repository, _, self.tag = built.name("VENTA").rpartition(":")
        self.next_tag = NEXT_TAG
        self.nats, self.postgres, self.redis = built.name("NATS"), built.name("POSTGRES"), built.name("REDIS")


def local_platform_start_s() -> float:
    """`./venta up` (every service a local process, servers embedded) from start to "every service ready"."""
    with tempfile.TemporaryDirectory(prefix="bench-up-") as data:
        began = time.monotonic()
        proc = start(Path(data), free_port_offset())
        try:
            wait_up(proc)
            return time.monotonic() - began
        finally:
            proc.terminate()
            proc.wait(60)


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) >= 2 else float("nan")


async def request_loop(platform: Platform, seconds: float, *, during: str | None = None) -> tuple[Outcomes, float]:
    """The e2e's loop for `seconds`; with `during`, patch spec.version to it after 3 s and run until rolled."""
    gateway = platform.url("gateway", 5002)
    token = await platform.mint("bench")  # with the admin token from the Secret the operator generated
    began = time.monotonic()
    async with RequestLoop(gateway, token, prefix="bench") as loop:
        if during is None:
            await asyncio.sleep(seconds)
        else:
            await asyncio.sleep(3)
            await asyncio.to_thread(
                platform.kubectl,
                "patch",
                "vp",
                platform.name,
                "--type=merge",
                "-p",
                json.dumps({"spec": {"version": during}}),
            )

            def rolled() -> bool:
                status = platform.resource().get("status") or {}
                return status.get("version") == during and platform.ready() and platform.all_pods_ready()

            await asyncio.to_thread(wait_for, rolled, timeout=900, interval=1, what="the rollout")
            await asyncio.sleep(3)
    return loop.outcomes, time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loop-seconds", type=float, default=30, help="length of the at-rest request loop")
    args = parser.parse_args()
    tools = build_tools(quiet=True)
    built = build_images("--tag", TAG, "--next-tag", NEXT_TAG, "all", quiet=True)
    images = Images(built)
    local_s = local_platform_start_s()
    with RealNode(tools=tools) as node, tempfile.TemporaryDirectory(prefix="bench-platform-") as work:
        node.import_images(*(built.archive(k) for k in ("VENTA", "VENTA_NEXT", "NATS", "POSTGRES", "REDIS")))
        path = Path(work) / "platform.yaml"
        example_for(images, path)
        node.control_plane.create_persistent_volumes(4, capacity="5Gi", prefix="venta")
        installer = Installer(node, chart_values_for(images), path)
        platform = Platform(node, "venta")
        began = time.monotonic()
        installer.run()
        platform.wait_ready()
        ready_s = time.monotonic() - began
        rest, rest_s = asyncio.run(request_loop(platform, args.loop_seconds))
        rolling, rolling_s = asyncio.run(request_loop(platform, 0, during=NEXT_TAG))
    rows = [
        (
            "apply -> Ready (helm install .. Ready=True)",
            f"{ready_s:.1f} s",
            f"./venta up -> ready: {local_s:.1f} s",
            f"{ready_s / local_s:.2f}x",
        ),
        ("  of which", ", ".join(f"{k}: {v} s" for k, v in installer.timings.items()), "", ""),
        (
            "rollout to a new version",
            f"{rolling_s:.1f} s, {rolling.failed_total} failed of "
            f"{len(rolling.acknowledged) + rolling.reads + rolling.failed_total} requests",
            "",
            "",
        ),
        (
            "request p50 during rollout",
            f"{percentile(rolling.latencies, 50) * 1000:.1f} ms",
            f"at rest: {percentile(rest.latencies, 50) * 1000:.1f} ms",
            f"{percentile(rolling.latencies, 50) / percentile(rest.latencies, 50):.2f}x",
        ),
        (
            "request p99 during rollout",
            f"{percentile(rolling.latencies, 99) * 1000:.1f} ms",
            f"at rest: {percentile(rest.latencies, 99) * 1000:.1f} ms",
            f"{percentile(rolling.latencies, 99) / percentile(rest.latencies, 99):.2f}x",
        ),
        (
            "requests/s",
            f"{len(rolling.latencies) / rolling_s:.1f} during rollout",
            f"at rest: {len(rest.latencies) / rest_s:.1f}",
            "",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\nreal node (1 platform), {time.strftime('%Y-%m-%d %H:%M')}; one client, sequential create+read:")
    for name, value, peer, ratio in rows:
        print(f"  {name:<{width}}  {value:<40} {peer:<28} {ratio}")
    if rolling.failure_samples:
        print("failures during the rollout:", *rolling.failure_samples, sep="\n  ")


if __name__ == "__main__":
    main()
