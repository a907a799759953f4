"""Helpers of the operator e2e tests: the operator as a subprocess, helm, and kubectl-level platform checks.

A module (not conftest) so tests can import it; pyproject.toml puts this directory on the tests' path.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.devkit.servers import free_port
from tests.cluster.kwok import Kubectl, KwokCluster
from tests.support.proc import cpu_seconds, status_kib

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "venta-operator"
RELEASE, SYSTEM_NS = "venta-operator", "venta-system"


def platform_manifest(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A VentaPlatform named `name`: `spec` over a version, the one field without a default."""
    return {
        "apiVersion": "venta.io/v1alpha1",
        "kind": "VentaPlatform",
        "metadata": {"name": name},
        "spec": {"version": "1.0.0", **spec},
    }


def wait_for(
    check: Callable[[], Any], *, timeout: float = 120, interval: float = 0.5, what: str | Callable[[], str] = ""
) -> Any:
    """Poll until `check()` returns something truthy; fail with `what` and the last value otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    described = what() if callable(what) else what
    pytest.fail(f"timed out after {timeout}s waiting for {described}; last: {last!r}", pytrace=False)


class OperatorProcess:
    """`kopf run -m venta_operator.handlers` as a child process, with fast timers for tests."""

    FAST = {
        "VENTA_OPERATOR_DRIFT_INTERVAL_S": "4",
        "VENTA_OPERATOR_RETRY_DELAY_S": "1",
        "VENTA_OPERATOR_ERROR_DELAY_S": "3",
    }

    def __init__(self, kubeconfig: Path, log: Path, settings: dict[str, str] | None = None) -> None:
        self.kubeconfig, self.log = kubeconfig, log
        self.settings = self.FAST if settings is None else settings
        self.metrics_port, self.health_port = free_port(), free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            **self.settings,
            "KUBECONFIG": str(self.kubeconfig),
            "VENTA_OPERATOR_METRICS_PORT": str(self.metrics_port),
        }
        env.pop("KUBERNETES_SERVICE_HOST", None)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "kopf",
                    "run",
                    "--standalone",
                    "--all-namespaces",
                    "--verbose",
                    "--log-format=json",
                    "--module=venta_operator.handlers",
                    f"--liveness=http://127.0.0.1:{self.health_port}/healthz",
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        wait_for(self._healthy, timeout=60, what=f"the operator to start (log: {self.log})")

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(f"operator exited with {self.proc.returncode}:\n{self.log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def metrics(self) -> dict[str, float]:
        """Samples of the operator's /metrics, keyed `name{label=value,...}`."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        out = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                out[f"{s.name}{{{labels}}}"] = s.value
        return out

    def writes(self) -> float:
        """Writes so far: to children (applies, creates, deletes) and to platforms' status (patches)."""
        return sum(
            v
            for k, v in self.metrics().items()
            if k.startswith("venta_operator_api_requests_total{")
            and any(f"verb={verb}," in k for verb in ("apply", "create", "delete", "patch"))
        )

    def cpu_seconds(self) -> float:
        """User + system CPU time the operator process has used."""
        assert self.proc is not None
        return cpu_seconds(self.proc.pid)

    def rss_bytes(self) -> int:
        assert self.proc is not None
        return status_kib(self.proc.pid, "VmRSS") * 1024


@dataclass(frozen=True)
class Release:
    namespace: str
    service_account: str


def helm(cluster: KwokCluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    binary = cluster.tools.helm
    assert binary is not None, "helm was not built: run tests/cluster/build.sh"
    result = subprocess.run(
        [str(binary), "--kubeconfig", str(cluster.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed:\n{result.stderr}{result.stdout}", pytrace=False)
    return result


def advertise_ephemeral_storage(kubectl: Kubectl, size: str = "200Gi") -> None:
    """Give KWOK's fake nodes the `ephemeral-storage` capacity every real node reports.

    Without it, pods requesting ephemeral storage (all of ours do) stay Pending as "Insufficient ephemeral-storage".
    """
    status = {"status": {"capacity": {"ephemeral-storage": size}, "allocatable": {"ephemeral-storage": size}}}
    for node in kubectl("get", "nodes", "-o", "name").stdout.split():
        kubectl("patch", node, "--subresource=status", "--type=merge", "-p", json.dumps(status))


def install_chart(cluster: KwokCluster, kubectl: Kubectl, volumes: int = 60) -> Release:
    """`helm install` of the chart (CRD, ServiceAccount, cluster-wide RBAC, Deployment, metrics Service)."""
    advertise_ephemeral_storage(kubectl)
    helm(
        cluster,
        "install",
        RELEASE,
        str(CHART),
        "--namespace",
        SYSTEM_NS,
        "--create-namespace",
        "--set",
        "watch.clusterWide=true",
        "--wait",
        "--timeout",
        "120s",
    )
    kubectl("wait", "--for=condition=Established", "crd/ventaplatforms.venta.io", "--timeout=60s")
    # PostgreSQL claims 5Gi by default; the cluster pre-creates only 1Gi volumes. Bound volumes are never reused.
    cluster.create_persistent_volumes(volumes, capacity="5Gi", prefix="venta")
    return Release(namespace=SYSTEM_NS, service_account=RELEASE)


def service_account_kubeconfig(kubectl: Kubectl, release: Release, path: Path) -> Path:
    """A kubeconfig with the chart's ServiceAccount token: the operator gets exactly the chart's permissions."""
    token = kubectl(
        "create", "token", release.service_account, "-n", release.namespace, "--duration=12h"
    ).stdout.strip()
    admin = json.loads(kubectl("config", "view", "--raw", "--minify", "--flatten", "-o", "json").stdout)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "operator",
        "clusters": [{"name": "kwok", "cluster": admin["clusters"][0]["cluster"]}],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "kwok", "user": "operator"}}],
    }
    path.write_text(json.dumps(config))
    return path


class Platforms:
    """kubectl-level helpers for one namespace: what an SRE would type, read back as JSON."""

    def __init__(self, kubectl: Kubectl, namespace: str) -> None:
        self.kubectl, self.ns = kubectl, namespace

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        result = self.kubectl("-n", self.ns, "get", kind, name, "-o", "json", check=False)
        return json.loads(result.stdout) if result.returncode == 0 else None

    def names(self, kind: str, selector: str = "app.kubernetes.io/managed-by=venta-operator") -> set[str]:
        out = self.kubectl("-n", self.ns, "get", kind, "-l", selector, "-o", "json").stdout
        return {i["metadata"]["name"] for i in json.loads(out)["items"]}

    def apply_file(self, path: Path) -> None:
        self.kubectl("-n", self.ns, "apply", "-f", str(path))

    def apply(self, manifest: dict[str, Any]) -> None:
        self.kubectl("-n", self.ns, "apply", "-f", "-", input=json.dumps(manifest))

    def patch(self, name: str, patch: dict[str, Any]) -> None:
        self.kubectl("-n", self.ns, "patch", "vp", name, "--type=merge", "-p", json.dumps(patch))

    def condition(self, name: str, kind: str = "Ready") -> dict[str, Any]:
        vp = self.get("vp", name) or {}
        return next((c for c in (vp.get("status") or {}).get("conditions", []) if c["type"] == kind), {})

    def wait_ready(self, name: str, timeout: float = 180) -> dict[str, Any]:
        """Until Ready=True for the current generation; returns the platform."""

        def ready() -> dict[str, Any] | None:
            vp = self.get("vp", name)
            if not vp:
                return None
            status = vp.get("status") or {}
            cond: dict[str, Any] = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})
            fresh = status.get("observedGeneration") == vp["metadata"]["generation"]
            return vp if fresh and cond.get("status") == "True" else None

        found: dict[str, Any] = wait_for(
            ready, timeout=timeout, what=lambda: f"{self.ns}/{name} Ready: {self.condition(name)}"
        )
        return found


def make_namespace(kubectl: Kubectl) -> str:
    name = f"vp-{secrets.token_hex(3)}"
    kubectl("create", "namespace", name)
    kubectl(
        "label",
        "namespace",
        name,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
    )
    return name
