"""Smoke tests of the test cluster itself (tests/cluster): does it behave like the real thing where we rely on it?

Each test proves one property the operator's end-to-end tests depend on: the controllers run (Deployment, Job),
simulated pods get Ready, claims bind to the pre-created volumes, helm installs charts, and the apiserver
evaluates CEL validation rules of CRDs (the operator's CRDs use them).
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.kwok import ClusterError, Kubectl, KwokCluster

WAIT = "--timeout=120s"


@pytest.fixture
def namespace(kube_cluster: KwokCluster, kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting for its finalization)."""
    name = f"smoke-{secrets.token_hex(3)}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def pod_template(app: str) -> dict[str, Any]:
    """A pod template; the image is never pulled, since kwok only simulates pods."""
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": app, "image": "venta/smoke:never-pulled"}]},
    }


def test_server_version_is_the_built_one(kube_cluster: KwokCluster, kubectl: Kubectl) -> None:
    server = json.loads(kubectl("version", "-o", "json").stdout)["serverVersion"]
    assert server["gitVersion"] == kube_cluster.tools.kube_version
    nodes = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]
    assert len(nodes) == 2


def test_deployment_becomes_available(kube_cluster: KwokCluster, kubectl: Kubectl, namespace: str) -> None:
    kube_cluster.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": pod_template("web")},
        }
    )
    kubectl("-n", namespace, "wait", "--for=condition=Available", "deployment/web", WAIT)
    deployment = json.loads(kubectl("-n", namespace, "get", "deployment/web", "-o", "json").stdout)
    assert deployment["status"]["availableReplicas"] == 2
    pods = json.loads(kubectl("-n", namespace, "get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
    assert {pod["status"]["phase"] for pod in pods} == {"Running"}
    assert all(pod["spec"].get("nodeName") for pod in pods), "the scheduler placed every pod on a fake node"


def test_job_completes(kube_cluster: KwokCluster, kubectl: Kubectl, namespace: str) -> None:
    template = pod_template("once")
    template["spec"]["restartPolicy"] = "Never"
    kube_cluster.apply(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "once", "namespace": namespace},
            "spec": {"completions": 2, "backoffLimit": 0, "template": template},
        }
    )
    kubectl("-n", namespace, "wait", "--for=condition=Complete", "job/once", WAIT)
    job = json.loads(kubectl("-n", namespace, "get", "job/once", "-o", "json").stdout)
    assert job["status"]["succeeded"] == 2


def test_statefulset_with_volume_claims_becomes_ready(
    kube_cluster: KwokCluster, kubectl: Kubectl, namespace: str
) -> None:
    template = pod_template("db")
    template["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    kube_cluster.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": namespace},
            "spec": {
                "replicas": 2,
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": template,
                # No storageClassName: the default StorageClass ("standard") must be applied.
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "100Mi"}}},
                    }
                ],
            },
        }
    )
    kubectl("-n", namespace, "rollout", "status", "statefulset/db", WAIT)
    claims = json.loads(kubectl("-n", namespace, "get", "pvc", "-o", "json").stdout)["items"]
    assert sorted(claim["metadata"]["name"] for claim in claims) == ["data-db-0", "data-db-1"]
    assert {claim["status"]["phase"] for claim in claims} == {"Bound"}
    assert {claim["spec"]["storageClassName"] for claim in claims} == {"standard"}


def test_helm_installs_a_chart(kube_cluster: KwokCluster, kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    helm = kube_cluster.tools.helm
    assert helm is not None, "build.sh did not build helm"

    def run_helm(*args: str) -> str:
        command = [str(helm), "--kubeconfig", str(kube_cluster.kubeconfig), "--namespace", namespace, *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
        assert result.returncode == 0, f"{' '.join(command)}\n{result.stderr}"
        return result.stdout

    assert run_helm("version", "--short").startswith("v4."), "helm v4 reports its version"
    chart = tmp_path / "smoke"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: smoke\nversion: 0.1.0\n")
    (chart / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\ndata:\n  greeting: hello\n"
    )
    run_helm("install", "smoke", str(chart), "--wait", "--timeout", "60s")
    releases = json.loads(run_helm("list", "-o", "json"))
    assert [(release["name"], release["status"]) for release in releases] == [("smoke", "deployed")]
    greeting = kubectl("-n", namespace, "get", "configmap/smoke-settings", "-o", "jsonpath={.data.greeting}")
    assert greeting.stdout == "hello"


def test_apiserver_enforces_cel_validation_rules(kube_cluster: KwokCluster, kubectl: Kubectl, namespace: str) -> None:
    group = "smoke.venta.test"
    kube_cluster.apply(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"ranges.{group}"},
            "spec": {
                "group": group,
                "scope": "Namespaced",
                "names": {"plural": "ranges", "singular": "range", "kind": "Range"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "spec": {
                                        "type": "object",
                                        "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}},
                                        # A cross-field rule: only CEL can express it (OpenAPI bounds cannot).
                                        "x-kubernetes-validations": [
                                            {
                                                "rule": "self.min <= self.max",
                                                "message": "min must not exceed max",
                                                "fieldPath": ".min",
                                            }
                                        ],
                                    }
                                },
                            }
                        },
                    }
                ],
            },
        }
    )
    kubectl("wait", "--for=condition=Established", f"crd/ranges.{group}", WAIT)

    def create(name: str, low: int, high: int) -> None:
        kube_cluster.apply(
            {
                "apiVersion": f"{group}/v1",
                "kind": "Range",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"min": low, "max": high},
            }
        )

    create("good", 1, 2)
    with pytest.raises(ClusterError) as rejected:
        create("bad", 3, 2)
    message = str(rejected.value)
    assert "spec.min" in message, message
    assert "min must not exceed max" in message, message
    assert kubectl("-n", namespace, "get", f"ranges.{group}/bad", check=False).returncode != 0
