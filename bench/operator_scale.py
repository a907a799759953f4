"""Operator benchmark on the KWOK test cluster: apply -> Ready for 1 and N platforms, the API requests of a
no-op reconcile (goal: zero writes), and the operator's memory with N platforms.

Why on KWOK: the control plane is the real one (scheduler, controllers, garbage collector), only pods are simulated,
so the numbers are the operator's and the API server's, not the images'. The operator runs as in production
(`kopf run`, the chart's RBAC, default settings except a shorter drift period so that the measurement window
contains passes). Usage: `python bench/operator_scale.py [N] [--controller-qps Q]` (default 50 platforms and 100
requests/s; needs tests/cluster/build.sh's tools).

The cluster is set up as for a scale test: kube-controller-manager's client may send `--controller-qps` requests a
second (burst twice that) instead of its defaults of 20 (burst 30), which are sized for a large shared production
control plane. At the defaults its Deployment controller creates ReplicaSets at ~5 a second (a create, an event and
a status update each: 20 requests/s), and 450 Deployments take 85 s whatever the operator does. `--controller-qps 0`
keeps Kubernetes' defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test helpers (tests.cluster, tests.support) when run as a script

from tests.cluster.kwok import ClusterTools, KwokCluster, build_tools  # noqa: E402
from tests.support.operator_e2e import OperatorProcess, install_chart, service_account_kubeconfig  # noqa: E402
from venta_operator import readiness  # noqa: E402
from venta_operator.config import OperatorConfig  # noqa: E402
from venta_operator.kube import ApiServer  # noqa: E402
from venta_operator.metrics import API_REQUESTS  # noqa: E402
from venta_operator.naming import LABEL_MANAGED_BY, MANAGED_BY  # noqa: E402
from venta_operator.reconciler import ALL_OPTIONAL_KINDS, CONCURRENCY, OPTIONAL_APIS, Reconciler  # noqa: E402
from venta_operator.render import render  # noqa: E402

DRIFT_S = 15.0


CONTROLLER_QPS = 100  # kube-controller-manager's client rate limit in the benchmark's clusters (module docstring)


def bench_cluster(tools: ClusterTools, controller_qps: int) -> KwokCluster:
    """The test cluster with room for 50 platforms' Services and a scale test's controller rate limit.

    kube-apiserver's default Service range (a /24, 254 addresses) is full after ~25 platforms (10 ClusterIP Services
    each); kube-controller-manager's rate limit is the module docstring's.
    """
    flags = ["--extra-args", "kube-apiserver=service-cluster-ip-range=10.96.0.0/16"]
    if controller_qps:
        flags += ["--extra-args", f"kube-controller-manager=kube-api-qps={controller_qps}"]
        flags += ["--extra-args", f"kube-controller-manager=kube-api-burst={2 * controller_qps}"]
    return KwokCluster(nodes=12, tools=tools, persistent_volumes=0, create_args=flags)


def platform(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "venta.io/v1alpha1",
        "kind": "VentaPlatform",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"version": "1.0.0"},
    }


READY_LINE = (
    "{.metadata.name} {.metadata.generation} {.status.observedGeneration} "
    '{.status.conditions[?(@.type=="Ready")].status}{"\\n"}'
)


def time_to_ready(cluster: KwokCluster, namespace: str, names: list[str], timeout: float = 900) -> list[float]:
    """Apply the platforms in one request and return, per platform, the seconds until Ready=True (for its spec).

    Read from one watch (`kubectl get -w`, started before the apply), not by polling: a kubectl process four times
    a second would cost the two cores a good part of what it measures.
    """
    items = {"apiVersion": "v1", "kind": "List", "items": [platform(n, namespace) for n in names]}
    watch = subprocess.Popen(
        [
            cluster.kubectl_binary,
            "--kubeconfig",
            str(cluster.kubeconfig),
            "-n",
            namespace,
            "get",
            "vp",
            "-w",
            "-o",
            f"jsonpath={READY_LINE}",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in watch.stdout or []:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        start = time.monotonic()
        cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(items))
        ready: dict[str, float] = {}
        while len(ready) < len(names):
            left = timeout - (time.monotonic() - start)
            try:
                line = lines.get(timeout=max(left, 0.001))
            except queue.Empty:
                raise TimeoutError(f"{len(names) - len(ready)} platforms not Ready after {timeout}s") from None
            name, generation, observed, status = [*line.rstrip("\n").split(" "), "", "", ""][:4]
            if status == "True" and observed == generation:
                ready.setdefault(name, time.monotonic() - start)
    finally:
        watch.kill()
        watch.wait()
    return sorted(ready.values())


async def noop_requests(kubeconfig: Path, body_json: str) -> dict[str, float]:
    """One in-process pass over a converged platform, counting its requests by verb."""
    os.environ["KUBECONFIG"] = str(kubeconfig)
    kube = await ApiServer.connect()
    try:
        reconciler = Reconciler(kube)
        body = json.loads(body_json)
        await reconciler.reconcile(body)  # warms discovery, which is cached afterwards
        before = _requests()
        outcome = await reconciler.reconcile(body)
        after = _requests()
    finally:
        await kube.close()
    assert outcome.ready and not outcome.writes, outcome.writes
    return {verb: after.get(verb, 0) - before.get(verb, 0) for verb in after}


async def floor_seconds(kubeconfig: Path, namespace: str, names: list[str], limit_s: float = 900) -> float:
    """The physical limit of `time_to_ready`: every child the operator would make for these platforms (as
    `venta_operator.render` prints them) applied at once, in-process with the operator's own request concurrency, and
    timed until every Deployment and StatefulSet is ready and every Job complete. No operator, no stages (a real
    platform must migrate before it rolls out), no owner: the cluster's own work of running that many children."""
    os.environ["KUBECONFIG"] = str(kubeconfig)
    kube = await ApiServer.connect()
    try:
        served = frozenset().union(*[await kube.served_kinds(api) & k for api, k in OPTIONAL_APIS.items()])
        manifests = [
            m
            for name in names
            for m in render(platform(name, namespace), namespace)
            if m["kind"] not in ALL_OPTIONAL_KINDS or m["kind"] in served
        ]
        for m in manifests:
            m["metadata"].pop("ownerReferences", None)  # no owner here: the garbage collector would delete them
        in_flight = asyncio.Semaphore(CONCURRENCY)

        async def apply(manifest: dict[str, Any]) -> None:
            async with in_flight:
                await kube.apply(manifest)

        start = time.monotonic()
        await asyncio.gather(*(apply(m) for m in manifests))
        print(f"  (the {len(manifests)} children applied in {time.monotonic() - start:.1f} s)", file=sys.stderr)
        checks = {"Deployment": readiness.deployment, "StatefulSet": readiness.statefulset, "Job": readiness.job}
        while time.monotonic() - start < limit_s:
            waiting = [
                obj
                for kind, check in checks.items()
                for obj in await kube.list(kind, namespace, f"{LABEL_MANAGED_BY}={MANAGED_BY}")
                if not check(obj, obj["metadata"]["name"]).ready
            ]
            if not waiting:
                return time.monotonic() - start
            await asyncio.sleep(1)
        raise TimeoutError(f"children of {len(names)} platforms not running after {limit_s}s")
    finally:
        await kube.close()


def _requests() -> dict[str, float]:
    out: dict[str, float] = {}
    for family in API_REQUESTS.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                out[sample.labels["verb"]] = out.get(sample.labels["verb"], 0) + sample.value
    return out


def main(n: int = 50, controller_qps: int = CONTROLLER_QPS) -> None:
    tools = build_tools(quiet=True)
    work = Path(tempfile.mkdtemp(prefix="venta-bench-"))
    with bench_cluster(tools, controller_qps) as cluster:
        kubectl = cluster.kubectl
        release = install_chart(cluster, kubectl, volumes=2 * (n + 1) + 4)
        kubeconfig = service_account_kubeconfig(kubectl, release, work / "kubeconfig")
        defaults = OperatorConfig()
        operator = OperatorProcess(
            kubeconfig, work / "operator.log", settings={"VENTA_OPERATOR_DRIFT_INTERVAL_S": str(DRIFT_S)}
        )
        operator.start()
        try:
            time.sleep(2)
            rss_idle = operator.rss_bytes()
            kubectl("create", "namespace", "bench-one")
            one = time_to_ready(cluster, "bench-one", ["solo"])[0]
            kubectl("create", "namespace", "bench-many")
            many = time_to_ready(cluster, "bench-many", [f"p{i:02d}" for i in range(n)])

            body = kubectl("-n", "bench-one", "get", "vp", "solo", "-o", "json").stdout
            requests = asyncio.run(noop_requests(cluster.kubeconfig, body))

            writes_before = operator.writes()
            timer_key = "venta_operator_reconciles_total{trigger=timer}"
            passes_before = operator.metrics().get(timer_key, 0)
            time.sleep(DRIFT_S * 2 + 2)
            writes_during = operator.writes() - writes_before
            passes = operator.metrics().get(timer_key, 0) - passes_before
            rss, cpu = operator.rss_bytes(), operator.cpu_seconds()
        finally:
            operator.stop()
    # a fresh cluster, same setup
    with bench_cluster(tools, controller_qps) as cluster:
        install_chart(cluster, cluster.kubectl, volumes=2 * n + 4)
        cluster.kubectl("create", "namespace", "bench-floor")
        floor = asyncio.run(floor_seconds(cluster.kubeconfig, "bench-floor", [f"p{i:02d}" for i in range(n)]))

    reads = sum(v for verb, v in requests.items() if verb in ("list", "get", "discover"))
    writes = sum(v for verb, v in requests.items() if verb in ("apply", "create", "delete", "patch"))
    print(
        f"Venta operator on KWOK (Kubernetes {tools.kube_version}, 12 fake nodes, kube-controller-manager's client "
        f"{f'at {controller_qps} requests/s, burst {2 * controller_qps}' if controller_qps else 'at its defaults'}); "
        "operator settings: "
        f"{defaults.workers} workers, retry {defaults.retry_delay_s:g} s, drift pass every {DRIFT_S:g} s"
    )
    print(f"apply -> Ready, 1 platform:                 {one:6.1f} s")
    print(
        f"apply -> Ready, {n} platforms: first       {many[0]:6.1f} s, median {statistics.median(many):6.1f} s, "
        f"all {many[-1]:6.1f} s"
    )
    print(f"  ratio all-{n} / one:                      {many[-1] / one:6.2f}x  (linear would be {n}x)")
    print(
        f"physical limit, {n} platforms' children applied at once without the operator: all running after "
        f"{floor:6.1f} s; operator / limit {many[-1] / floor:.2f}x"
    )
    by_verb = ", ".join(f"{verb} {count:.0f}" for verb, count in sorted(requests.items()) if count)
    print(f"no-op reconcile of one platform:            {reads:.0f} reads ({by_verb}), {writes:.0f} writes")
    print(f"drift passes over {n + 1} converged platforms: {passes:.0f} passes, {writes_during:.0f} writes")
    print(
        f"operator memory (RSS) with {n + 1} platforms:  {rss / 2**20:6.1f} MiB "
        f"({rss / 2**20 / (n + 1):.2f} MiB per platform, upper bound); {rss_idle / 2**20:.1f} MiB before the first"
    )
    print(f"operator CPU for the whole run:             {cpu:6.1f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("platforms", nargs="?", type=int, default=50)
    parser.add_argument(
        "--controller-qps",
        type=int,
        default=CONTROLLER_QPS,
        help="kube-controller-manager's client requests/s (burst twice that); 0: Kubernetes' defaults (20, burst 30)",
    )
    args = parser.parse_args()
    main(args.platforms, args.controller_qps)
