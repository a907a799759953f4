"""The Helm chart: lint, template in both RBAC modes, and a Kubernetes linter over everything we deploy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.kwok import KwokCluster
from tests.support.operator_e2e import CHART, ROOT, helm

pytestmark = pytest.mark.cluster


def template(cluster: KwokCluster, *sets: str) -> list[dict[str, Any]]:
    args = ["template", "venta-operator", str(CHART), "--namespace", "venta-system", "--include-crds"]
    for s in sets:
        args += ["--set", s]
    return [d for d in yaml.safe_load_all(helm(cluster, *args).stdout) if d]


def test_helm_lint(kube_cluster: KwokCluster) -> None:
    for values in ([], ["watch.clusterWide=true"], ["platform.enabled=true"], ["development.liveReload=true"]):
        args = ["lint", "--strict", str(CHART)]
        for v in values:
            args += ["--set", v]
        helm(kube_cluster, *args)


def test_namespaced_mode_grants_roles_only_in_watched_namespaces(kube_cluster: KwokCluster) -> None:
    docs = template(kube_cluster, "watch.namespaces={shop,staging}")
    kinds = [(d["kind"], d["metadata"].get("namespace")) for d in docs]
    assert ("Role", "shop") in kinds and ("Role", "staging") in kinds
    assert not [k for k, _ in kinds if k.startswith("Cluster") and k != "CustomResourceDefinition"]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    command = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--namespace=shop" in command and "--namespace=staging" in command


def test_cluster_wide_mode(kube_cluster: KwokCluster) -> None:
    docs = template(kube_cluster, "watch.clusterWide=true", "platform.enabled=true")
    kinds = {d["kind"] for d in docs}
    assert {"ClusterRole", "ClusterRoleBinding", "VentaPlatform", "CustomResourceDefinition"} <= kinds
    assert "Role" not in kinds
    rules = next(d for d in docs if d["kind"] == "ClusterRole")["rules"]
    verbs = {v for r in rules for v in r["verbs"]}
    assert "*" not in verbs and "escalate" not in verbs and "bind" not in verbs


def test_chart_ships_dashboards_and_the_operators_alerts(kube_cluster: KwokCluster) -> None:
    docs = template(kube_cluster)
    assert "PrometheusRule" not in {d["kind"] for d in docs}  # the cluster does not serve it
    dashboards = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboards"))
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboards["data"] == {
        p.name: p.read_text().rstrip("\n") for p in sorted((ROOT / "observability" / "dashboards").glob("*.json"))
    }
    rendered = helm(
        kube_cluster,
        "template",
        "venta-operator",
        str(CHART),
        "--namespace",
        "venta-system",
        "--api-versions",
        "monitoring.coreos.com/v1/PrometheusRule",
        "--show-only",
        "templates/prometheusrule.yaml",
    ).stdout
    rule = yaml.safe_load(rendered)
    source = yaml.safe_load((ROOT / "observability" / "rules" / "venta-operator.yaml").read_text())
    assert rule["spec"]["groups"] == source["groups"]  # {{ $labels }} templates reach Prometheus untouched
    assert [d for d in template(kube_cluster, "grafana.dashboards.enabled=false") if d["kind"] == "ConfigMap"] == []


def test_development_mode_runs_the_same_command_under_watchfiles_from_a_writable_copy(
    kube_cluster: KwokCluster,
) -> None:
    def operator_pod(*sets: str) -> dict[str, Any]:
        docs = template(kube_cluster, "operator.extraArgs={--verbose}", *sets)
        return next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]  # type: ignore[no-any-return]

    plain, live = operator_pod(), operator_pod("development.liveReload=true")
    assert "initContainers" not in plain and [v["name"] for v in plain["volumes"]] == ["tmp"]
    (before,), (after,) = plain["containers"], live["containers"]
    assert after["command"][:4] == ["watchfiles", "--filter=python", "--target-type=command", "--sigint-timeout=10"]
    assert after["command"][4].split() == before["command"]  # kopf's own command line, unchanged
    assert after["command"][5:] == ["/app/operator", "/app/services"]
    assert {m["mountPath"]: m.get("subPath") for m in after["volumeMounts"]} == {
        "/tmp": None,
        "/app/operator": "operator",
        "/app/services": "services",
    }
    (init,) = live["initContainers"]
    assert init["image"] == after["image"] and init["volumeMounts"] == [{"name": "sources", "mountPath": "/sources"}]
    for container in (after, init):
        assert container["securityContext"] == before["securityContext"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert live["securityContext"] == plain["securityContext"]


def render_all(cluster: KwokCluster, into: Path) -> dict[str, Path]:
    """The chart and the children of each example, as the linters read them."""
    out = {"chart": into / "chart.yaml"}
    chart = helm(cluster, "template", "venta-operator", str(CHART), "--namespace", "venta-system")
    out["chart"].write_text(chart.stdout)
    for example in sorted((ROOT / "docs" / "examples").glob("*.yaml")):
        rendered = subprocess.run(
            [sys.executable, "-m", "venta_operator.render", str(example), "--namespace", example.stem],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        out[example.stem] = into / f"children-{example.name}"
        out[example.stem].write_text(rendered.stdout)
    return out


def linter(cluster: KwokCluster, name: str) -> Path | None:
    """A linter binary from tests/cluster's tools (or VENTA_<NAME> for one built elsewhere)."""
    override = os.environ.get(f"VENTA_{name.upper().replace('-', '_')}")
    found = Path(override) if override else getattr(cluster.tools, name.replace("-", "_"), None)
    return found if found is not None and os.access(found, os.X_OK) else None


# Left out, with a reason: tags are immutable versions, so `Always` would only make every start depend on the
# registry. NetworkPolicies are on by default (spec.networkPolicy), so every example is held to having them.
KUBE_SCORE_IGNORED = ["container-image-pull-policy"]


def test_kube_score_finds_nothing_critical(kube_cluster: KwokCluster, tmp_path: Path) -> None:
    binary = linter(kube_cluster, "kube-score")
    assert binary is not None, "kube-score was not built: run tests/cluster/build.sh"
    files = render_all(kube_cluster, tmp_path)
    for name, path in files.items():
        ignored = KUBE_SCORE_IGNORED
        args = [str(binary), "score", "--output-format", "ci", str(path)]
        for test in ignored:
            args += ["--ignore-test", test]
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        critical = [line for line in result.stdout.splitlines() if line.startswith("[CRITICAL]")]
        assert not critical, f"{name}:\n" + "\n".join(critical)
