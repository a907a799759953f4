"""Smoke tests of the real node: what the tests that run real workloads rely on.

Each test checks one promise of tests/cluster/real_node.py: the node is Ready with the pinned versions; a container
really runs (its logs, exec into it); a Service routes from a pod by DNS name and from the host by ClusterIP; a Job
completes; a StatefulSet's claim binds to a volume that a non-root container can write. The containers run the
testbox program (tests/cluster/go/testbox), the one image imported into the node.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from tests.cluster.node_config import NODE_NAME
from tests.cluster.real_node import RealNode

pytestmark = [pytest.mark.realnode, pytest.mark.slow]

T = TypeVar("T")


def container(image: str, *args: str, **extra: Any) -> dict[str, Any]:
    """A container running ``testbox <args>``, as locked down as the operator's (non-root, read-only root)."""
    return {
        "name": "main",
        "image": image,
        "imagePullPolicy": "Never",
        "args": list(args),
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        **extra,
    }


def wait(node: RealNode, namespace: str, condition: str, target: str, timeout: int = 120) -> None:
    node.kubectl("wait", f"--namespace={namespace}", f"--for={condition}", target, f"--timeout={timeout}s")


def test_node_is_ready_with_the_pinned_versions(real_node: RealNode) -> None:
    node = json.loads(real_node.kubectl("get", "node", NODE_NAME, "-o", "json").stdout)
    conditions = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert conditions["Ready"] == "True"
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.36.3"
    assert node["status"]["nodeInfo"]["kubeProxyVersion"] in ("", "v1.36.3")  # deprecated field, may be empty
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://1.6.")


def test_a_container_runs_and_answers_logs_and_exec(real_node: RealNode, namespace: str, testbox_image: str) -> None:
    started = time.monotonic()
    real_node.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "sleeper", "namespace": namespace},
            "spec": {"containers": [container(testbox_image, "sleep")], "terminationGracePeriodSeconds": 1},
        }
    )
    wait(real_node, namespace, "condition=Ready", "pod/sleeper")
    print(f"first pod Ready in {time.monotonic() - started:.1f}s")

    logs = real_node.kubectl("logs", f"--namespace={namespace}", "sleeper").stdout
    assert logs.strip() == "sleeping"
    exec_ = real_node.kubectl("exec", f"--namespace={namespace}", "sleeper", "--", "/testbox", "echo", "from", "exec")
    assert exec_.stdout.strip() == "from exec"


def test_a_service_answers_by_dns_name_from_a_pod_and_by_cluster_ip_from_the_host(
    real_node: RealNode, namespace: str, testbox_image: str
) -> None:
    labels = {"app": "web"}
    probe = {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}
    real_node.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [container(testbox_image, "serve", "8080", readinessProbe=probe)],
                        "terminationGracePeriodSeconds": 1,
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "client", "namespace": namespace},
            "spec": {"containers": [container(testbox_image, "sleep")], "terminationGracePeriodSeconds": 1},
        },
    )
    wait(real_node, namespace, "condition=Available", "deployment/web")
    wait(real_node, namespace, "condition=Ready", "pod/client")

    url = f"http://web.{namespace}.svc.cluster.local/"
    answer = retry(
        lambda: real_node.kubectl("exec", f"--namespace={namespace}", "client", "--", "/testbox", "get", url)
    )
    assert answer.stdout.startswith("hello from web-")

    cluster_ip = real_node.kubectl("get", f"--namespace={namespace}", "service/web", "-o", "jsonpath={.spec.clusterIP}")
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
    with retry(lambda: direct.open(f"http://{cluster_ip.stdout}/", timeout=5)) as response:
        assert response.read().decode().startswith("hello from web-")


def test_a_job_completes(real_node: RealNode, namespace: str, testbox_image: str) -> None:
    real_node.apply(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "once", "namespace": namespace},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "spec": {"restartPolicy": "Never", "containers": [container(testbox_image, "echo", "job", "done")]}
                },
            },
        }
    )
    wait(real_node, namespace, "condition=Complete", "job/once")
    assert real_node.kubectl("logs", f"--namespace={namespace}", "job/once").stdout.strip() == "job done"


def test_a_statefulset_claim_binds_and_a_non_root_container_writes_to_it(
    real_node: RealNode, namespace: str, testbox_image: str
) -> None:
    labels = {"app": "store"}
    real_node.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "store", "namespace": namespace},
            "spec": {
                "serviceName": "store",
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000},
                        "containers": [
                            container(testbox_image, "sleep", volumeMounts=[{"name": "data", "mountPath": "/data"}])
                        ],
                        "terminationGracePeriodSeconds": 1,
                    },
                },
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Mi"}}},
                    }
                ],
            },
        }
    )
    wait(real_node, namespace, "jsonpath={.status.readyReplicas}=1", "statefulset/store")
    claim = json.loads(real_node.kubectl("get", f"--namespace={namespace}", "pvc/data-store-0", "-o", "json").stdout)
    assert claim["status"]["phase"] == "Bound"

    written = real_node.kubectl(
        "exec", f"--namespace={namespace}", "store-0", "--", "/testbox", "write", "/data/note.txt", "kept"
    )
    assert written.stdout.strip() == "wrote /data/note.txt as uid 1000"
    volume = json.loads(real_node.kubectl("get", "pv", claim["spec"]["volumeName"], "-o", "json").stdout)
    with open(f"{volume['spec']['hostPath']['path']}/note.txt") as on_host:  # the same file, seen from the host
        assert on_host.read() == "kept"


def retry(attempt: Callable[[], T], timeout: float = 30.0) -> T:
    """The result of ``attempt()``, retried on errors for a while: kube-proxy and CoreDNS follow new endpoints
    within a second or two of a pod becoming Ready."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return attempt()
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
