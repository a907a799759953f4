"""Operator benchmark on the KWOK test cluster: apply -> Ready for 1 and N platforms, the API requests of a
no-op reconcile (goal: zero writes), and the operator's memory with N platforms.

Why on KWOK: the control plane is the real one (scheduler, controllers, garbage collector), only pods are simulated,
so the numbers are the operator's and the API server's, not the images'. The operator runs as in production
(`kopf run`, the chart's RBAC, default settings except a shorter drift period so that the measurement window
contains passes). Usage: `python bench/operator_scale.py [N]` (default 50; needs tests/cluster/build.sh's tools).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test helpers (tests.cluster, tests.support) when run as a script

from tests.cluster.kwok import Kubectl, KwokCluster, build_tools  # noqa: E402
from tests.support.operator_e2e import OperatorProcess, install_chart, service_account_kubeconfig  # noqa: E402
from venta_operator.config import OperatorConfig  # noqa: E402
from venta_operator.kube import ApiServer  # noqa: E402
from venta_operator.metrics import API_REQUESTS  # noqa: E402
from venta_operator.reconciler import Reconciler  # noqa: E402

DRIFT_S = 15.0


class WideServiceRangeCluster(KwokCluster):
    """The test cluster with room for 50 platforms' Services.

    kube-apiserver's default Service range (a /24, 254 addresses) is full after ~25 platforms (10 ClusterIP Services
    each). tests/cluster has no option for it yet, so the create command gets one more kwokctl flag here.
    """

    def _kwokctl(self, *args: str, **kwargs: Any) -> Any:
        if args[:2] == ("create", "cluster"):
            args = (*args, "--extra-args", "kube-apiserver=service-cluster-ip-range=10.96.0.0/16")
        return super()._kwokctl(*args, **kwargs)


def platform(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "venta.io/v1alpha1",
        "kind": "VentaPlatform",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"version": "1.0.0"},
    }


def time_to_ready(kubectl: Kubectl, namespace: str, names: list[str], timeout: float = 900) -> list[float]:
    """Apply the platforms in one request and return, per platform, the seconds until Ready=True."""
    items = {"apiVersion": "v1", "kind": "List", "items": [platform(n, namespace) for n in names]}
    start = time.monotonic()
    kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(items))
    ready: dict[str, float] = {}
    while len(ready) < len(names):
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{len(names) - len(ready)} platforms not Ready after {timeout}s")
        out = json.loads(kubectl("-n", namespace, "get", "vp", "-o", "json").stdout)
        now = time.monotonic() - start
        for vp in out["items"]:
            status = vp.get("status") or {}
            ok = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))
            if ok and status.get("observedGeneration") == vp["metadata"]["generation"]:
                ready.setdefault(vp["metadata"]["name"], now)
        time.sleep(0.25)
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


def _requests() -> dict[str, float]:
    out: dict[str, float] = {}
    for family in API_REQUESTS.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                out[sample.labels["verb"]] = out.get(sample.labels["verb"], 0) + sample.value
    return out


def main(n: int = 50) -> None:
    tools = build_tools(quiet=True)
    work = Path(tempfile.mkdtemp(prefix="venta-bench-"))
    with WideServiceRangeCluster(nodes=12, tools=tools, persistent_volumes=0) as cluster:
        kubectl = cluster.kubectl
        release = install_chart(cluster, kubectl, volumes=2 * (n + 1) + 4)
        kubeconfig = service_account_kubeconfig(kubectl, release, work / "kubeconfig")
        defaults = OperatorConfig()
        operator = OperatorProcess(
            kubeconfig, work / "operator.log", settings={"VENTA_OPERATOR_DRIFT_INTERVAL_S": str(DRIFT_S)}
        )
        operator.start()
        try:
            kubectl("create", "namespace", "bench-one")
            one = time_to_ready(kubectl, "bench-one", ["solo"])[0]
            kubectl("create", "namespace", "bench-many")
            many = time_to_ready(kubectl, "bench-many", [f"p{i:02d}" for i in range(n)])

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

    reads = sum(v for verb, v in requests.items() if verb in ("list", "get", "discover"))
    writes = sum(v for verb, v in requests.items() if verb in ("apply", "create", "delete"))
    print(
        f"Venta operator on KWOK (Kubernetes {tools.kube_version}, 12 fake nodes); operator settings: "
        f"{defaults.workers} workers, retry {defaults.retry_delay_s:g} s, drift pass every {DRIFT_S:g} s"
    )
    print(f"apply -> Ready, 1 platform:                 {one:6.1f} s")
    print(
        f"apply -> Ready, {n} platforms: first       {many[0]:6.1f} s, median {statistics.median(many):6.1f} s, "
        f"all {many[-1]:6.1f} s"
    )
    print(f"  ratio all-{n} / one:                      {many[-1] / one:6.2f}x  (linear would be {n}x)")
    by_verb = ", ".join(f"{verb} {count:.0f}" for verb, count in sorted(requests.items()) if count)
    print(f"no-op reconcile of one platform:            {reads:.0f} reads ({by_verb}), {writes:.0f} writes")
    print(f"drift passes over {n + 1} converged platforms: {passes:.0f} passes, {writes_during:.0f} writes")
    print(
        f"operator memory (RSS) with {n + 1} platforms:  {rss / 2**20:6.1f} MiB "
        f"({rss / 2**20 / (n + 1):.2f} MiB per platform, upper bound)"
    )
    print(f"operator CPU for the whole run:             {cpu:6.1f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
