"""The chart's log collector (logs.collector, templates/log-collector.yaml): off by default; on, an OpenTelemetry
Collector DaemonSet with the config of observability/logs/, hardened as far as reading the kubelet's files allows,
passing kube-score and the API server, and scheduled on every node.

The config itself is validated and run by the collector in tests/integration/observability/test_otel_collector.py.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.kwok import Kubectl, KwokCluster
from tests.e2e.operator.test_operator_chart import KUBE_SCORE_IGNORED, linter
from tests.support.operator_e2e import CHART, ROOT, advertise_ephemeral_storage, helm, wait_for

pytestmark = pytest.mark.cluster

CONFIG = ROOT / "observability" / "logs" / "otel-collector.yaml"
ON = "logs.collector.enabled=true"


def template(
    cluster: KwokCluster, *sets: str, only: bool = False, namespace: str = "venta-system"
) -> list[dict[str, Any]]:
    args = ["template", "venta-operator", str(CHART), "--namespace", namespace]
    if only:
        args += ["--show-only", "templates/log-collector.yaml"]
    for s in sets:
        args += ["--set", s]
    return [d for d in yaml.safe_load_all(helm(cluster, *args).stdout) if d]


def collector(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The collector's objects by kind."""
    found = [d for d in docs if d["metadata"]["name"].endswith("-log-collector")]
    by_kind = {d["kind"]: d for d in found}
    assert len(by_kind) == len(found)
    return by_kind


def test_off_by_default_and_lints_on(kube_cluster: KwokCluster) -> None:
    assert collector(template(kube_cluster)) == {}
    assert yaml.safe_load((CHART / "values.yaml").read_text())["logs"]["collector"]["enabled"] is False
    helm(kube_cluster, "lint", "--strict", str(CHART), "--set", ON)
    helm(kube_cluster, "lint", "--strict", str(CHART), "--set", ON, "--set", "networkPolicy.enabled=false")


def test_the_daemonset_reads_pod_logs_read_only_with_the_shipped_config(kube_cluster: KwokCluster) -> None:
    objects = collector(template(kube_cluster, ON, "logs.collector.lokiEndpoint=http://loki.monitoring:3100/otlp"))
    assert set(objects) == {"ServiceAccount", "ConfigMap", "DaemonSet", "NetworkPolicy"}  # no RBAC: no API access
    assert objects["ServiceAccount"]["automountServiceAccountToken"] is False
    assert objects["ConfigMap"]["data"] == {"otel-collector.yaml": CONFIG.read_text().rstrip("\n")}

    pod = objects["DaemonSet"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["tolerations"] == [{"operator": "Exists"}]  # every node's pods log
    (container,) = pod["containers"]
    # The config leaves out its own lines by this container name.
    config = yaml.safe_load(CONFIG.read_text())
    assert config["receivers"]["file_log"]["exclude"] == [f"/var/log/pods/*/{container['name']}/*.log"]
    image, _, tag = container["image"].rpartition(":")
    assert image == "otel/opentelemetry-collector-contrib" and tag == "0.165.0"  # pinned, no registry host
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["LOKI_ENDPOINT"] == "http://loki.monitoring:3100/otlp"
    assert env["VENTA_LOG_FILES"] == "/var/log/pods/*/*/*.log"
    assert container["args"] == ["--config=/etc/otelcol/otel-collector.yaml"]

    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["pod-logs"] == {"name": "pod-logs", "mountPath": "/var/log/pods", "readOnly": True}
    assert volumes["pod-logs"]["hostPath"] == {"path": "/var/log/pods", "type": "Directory"}
    assert mounts["config"]["readOnly"] is True
    assert volumes["config"]["configMap"]["name"] == objects["ConfigMap"]["metadata"]["name"]
    assert set(volumes) == {"pod-logs", "config"}

    # Root (the kubelet's log files are root's, mode 0640) and nothing else: no capability, no escalation.
    assert pod["securityContext"]["runAsUser"] == 0
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert objects["DaemonSet"]["metadata"]["annotations"] == {
        "kube-score/ignore": "container-security-context-user-group-id"
    }
    # No selector of the operator's (its Deployment, Service, NetworkPolicy) matches the collector's pods.
    labels = objects["DaemonSet"]["spec"]["template"]["metadata"]["labels"]
    operator = next(d for d in template(kube_cluster, ON) if d["kind"] == "Deployment")
    assert not operator["spec"]["selector"]["matchLabels"].items() <= labels.items()


def kube_score(binary: Path, manifests: Path) -> list[str]:
    args = [str(binary), "score", "--output-format", "ci", str(manifests)]
    for test in KUBE_SCORE_IGNORED:
        args += ["--ignore-test", test]
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    return [line for line in result.stdout.splitlines() if line.startswith("[CRITICAL]")]


def test_kube_score_finds_nothing_critical_with_the_collector(kube_cluster: KwokCluster, tmp_path: Path) -> None:
    binary = linter(kube_cluster, "kube-score")
    assert binary is not None, "kube-score was not built: run tests/cluster/build.sh"
    docs = template(kube_cluster, ON)
    rendered = tmp_path / "chart.yaml"
    rendered.write_text(yaml.safe_dump_all(docs))
    assert kube_score(binary, rendered) == []
    # The one ignore (running as root, explained in the annotation) is needed, and is the only finding it hides.
    for d in docs:
        if d["kind"] == "DaemonSet":
            del d["metadata"]["annotations"]
    rendered.write_text(yaml.safe_dump_all(docs))
    findings = kube_score(binary, rendered)
    assert len(findings) == 2 and all("-log-collector" in f for f in findings), findings
    assert "low user ID" in findings[0] and "low group ID" in findings[1], findings


def daemonset_status(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    found = kubectl("get", "daemonset/venta-operator-log-collector", "-n", namespace, "-o", "json").stdout
    return json.loads(found).get("status", {})  # type: ignore[no-any-return]


def refused_by_pod_security(kubectl: Kubectl, namespace: str) -> bool:
    events = json.loads(kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    return any(e["reason"] == "FailedCreate" and "violates PodSecurity" in e["message"] for e in events)


# Reading a hostPath as root is what the `privileged` Pod Security level allows, and only it.
@pytest.mark.parametrize("level", ["privileged", "baseline"])
def test_the_api_server_accepts_it_and_every_node_runs_one(
    kube_cluster: KwokCluster, kubectl: Kubectl, level: str
) -> None:
    namespace = f"logs-{level}-{secrets.token_hex(3)}"
    manifests = yaml.safe_dump_all(template(kube_cluster, ON, only=True, namespace=namespace))
    kubectl("create", "namespace", namespace)
    try:
        kubectl("label", "namespace", namespace, f"pod-security.kubernetes.io/enforce={level}")
        kubectl("apply", "--server-side", "--validate=strict", "-n", namespace, "-f", "-", input=manifests)
        if level == "baseline":
            wait_for(
                lambda: refused_by_pod_security(kubectl, namespace),
                timeout=60,
                what="the DaemonSet's pods refused by Pod Security baseline",
            )
            return
        advertise_ephemeral_storage(kubectl)  # the collector requests some, as every container of ours
        nodes = len(json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"])
        wait_for(
            lambda: (
                (s := daemonset_status(kubectl, namespace)).get("numberReady")
                == s.get("desiredNumberScheduled")
                == nodes
            ),
            timeout=90,
            what=lambda: f"a ready collector pod on each of {nodes} nodes: {daemonset_status(kubectl, namespace)}",
        )
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false")
