"""Deletion, operator restarts, bad references and metrics: each test with its own platform and namespace."""

from __future__ import annotations

import base64
import json
import signal
from typing import Any

import pytest

from tests.support.operator_e2e import OperatorProcess, Platforms, wait_for

pytestmark = pytest.mark.cluster

KINDS = "deployments,statefulsets,services,configmaps,secrets,jobs,cronjobs,poddisruptionbudgets,serviceaccounts,pvc"


def platform(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "venta.io/v1alpha1",
        "kind": "VentaPlatform",
        "metadata": {"name": name},
        "spec": {"version": "1.0.0", **spec},
    }


def children(vp: Platforms, name: str) -> list[dict[str, Any]]:
    out = vp.kubectl("-n", vp.ns, "get", KINDS, "-l", f"app.kubernetes.io/instance={name}", "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def test_deleting_the_platform_removes_every_child(platforms: Platforms) -> None:
    platforms.apply(platform("gone"))
    platforms.wait_ready("gone")
    assert len(children(platforms, "gone")) >= 30
    platforms.kubectl("-n", platforms.ns, "delete", "vp", "gone", "--wait=true")
    wait_for(
        lambda: not children(platforms, "gone"),
        timeout=120,
        what=lambda: f"no children left: {[i['metadata']['name'] for i in children(platforms, 'gone')]}",
    )
    claims = json.loads(platforms.kubectl("-n", platforms.ns, "get", "pvc", "-o", "json").stdout)["items"]
    assert claims == [], "volumes go with the platform by default (storage.deleteWithPlatform)"


def test_operator_restart_mid_reconcile_converges_without_duplicates(
    platforms: Platforms, operator: OperatorProcess
) -> None:
    platforms.apply(platform("restart"))
    wait_for(lambda: platforms.get("statefulset", "restart-postgres"), timeout=30, what="the first writes")
    password = (platforms.get("secret", "restart-postgres-credentials") or {})["data"]["password"]
    operator.stop(signal.SIGKILL)  # no graceful shutdown: as if the node died
    operator.start()
    platforms.wait_ready("restart")
    jobs = [j for j in platforms.names("job") if j.startswith("restart-migrate-")]
    assert len(jobs) == 1, jobs
    assert (platforms.get("secret", "restart-postgres-credentials") or {})["data"]["password"] == password
    names = [(i["kind"], i["metadata"]["name"]) for i in children(platforms, "restart")]
    assert len(names) == len(set(names))
    assert len([n for k, n in names if k == "Deployment"]) == 9  # seven services, identity, redis


def test_missing_secret_reference_degrades_until_created(platforms: Platforms) -> None:
    search = {
        "provider": "algolia",
        "algolia": {"appId": "APP", "apiKeySecretRef": {"name": "algolia", "key": "api-key"}},
    }
    platforms.apply(platform("refs", search=search))
    wait_for(lambda: platforms.condition("refs", "Degraded").get("status") == "True", timeout=60, what="Degraded=True")
    assert "Secret algolia (key api-key) not found" in platforms.condition("refs", "Degraded")["message"]
    platforms.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "algolia"},
            "data": {"api-key": base64.b64encode(b"k").decode()},
        }
    )
    platforms.wait_ready("refs")
    env = {
        e["name"]: e
        for e in (platforms.get("deployment", "refs-search-sync") or {})["spec"]["template"]["spec"]["containers"][0][
            "env"
        ]
    }
    assert env["VENTA_ALGOLIA_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "algolia", "key": "api-key"}


def test_autoscaling_and_network_policies_come_and_go(platforms: Platforms) -> None:
    spec = {
        "services": {"users": {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 4}}},
        "networkPolicy": {"enabled": True},
    }
    platforms.apply(platform("extras", **spec))
    platforms.wait_ready("extras")
    assert platforms.names("hpa") == {"extras-users"}
    assert "extras-default-deny" in platforms.names("networkpolicy")
    assert "extras-users" in platforms.names("pdb")
    platforms.kubectl(
        "-n",
        platforms.ns,
        "patch",
        "vp",
        "extras",
        "--type=json",
        "-p",
        json.dumps(
            [
                {"op": "remove", "path": "/spec/services/users/autoscaling"},
                {"op": "replace", "path": "/spec/networkPolicy/enabled", "value": False},
            ]
        ),
    )
    wait_for(
        lambda: not platforms.names("hpa") and not platforms.names("networkpolicy"),
        timeout=60,
        what="HPA and NetworkPolicies pruned",
    )
    platforms.wait_ready("extras")


def test_operator_metrics(platforms: Platforms, operator: OperatorProcess) -> None:
    platforms.apply(platform("measured"))
    platforms.wait_ready("measured")
    metrics = operator.metrics()
    assert metrics["venta_operator_managed_platforms{}"] >= 1
    assert sum(v for k, v in metrics.items() if k.startswith("venta_operator_reconciles_total")) > 0
    assert any(k.startswith("venta_operator_reconcile_duration_seconds_bucket") for k in metrics)
