"""PostgreSQL delegated to CloudNativePG, on a real API server with CloudNativePG's own published CRDs.

KWOK runs no CloudNativePG controller, so the tests play its part where it matters: they write the `Cluster`'s
status (as CloudNativePG reports a healthy cluster) and its generated `<cluster>-app` Secret. What is proven: the
API server of a cluster with CloudNativePG accepts the `Cluster` the operator writes (its schema and CEL rules);
the platform waits, PostgresReady False, until that Cluster is ready, then migrates through the `-rw` Service with
the `-app` credentials; a converged platform rewrites nothing (no drift flapping on the Cluster's server-side
defaults); without the CRD the platform says which CRD is missing, and (the tests run in file order, one operator)
the operator that saw no CRD notices it once installed, without waiting out its 5-minute discovery cache; garbage is
refused by the API server. Redis with persistence runs as a StatefulSet whose claim the controller creates.

The CRD files come from CloudNativePG's Go module at the version pinned in tests/cluster/build.sh (CNPG_CRDS).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.kwok import Kubectl, KwokCluster
from tests.support.operator_e2e import OperatorProcess, Platforms, platform_manifest, wait_for

pytestmark = pytest.mark.cluster

CRD = "clusters.postgresql.cnpg.io"
CLUSTER_CRD_FILE = "postgresql.cnpg.io_clusters.yaml"


def _crd_file(kube_cluster: KwokCluster) -> Path:
    crds = kube_cluster.tools.cnpg_crds
    if crds is None or not (crds / CLUSTER_CRD_FILE).is_file():
        pytest.fail("CloudNativePG's CRDs are not in the cache: run tests/cluster/build.sh", pytrace=False)
    return crds / CLUSTER_CRD_FILE


@pytest.fixture
def without_cloudnativepg(kubectl: Kubectl) -> None:
    kubectl("delete", "crd", CRD, "--ignore-not-found", "--wait=true", "--timeout=60s")


@pytest.fixture
def with_cloudnativepg(kubectl: Kubectl, kube_cluster: KwokCluster) -> Iterator[None]:
    # Server-side: the CRD is larger than the annotation client-side apply would keep.
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(_crd_file(kube_cluster)))

    def established() -> bool:  # `kubectl wait` fails at once on a CRD with no conditions yet
        crd = json.loads(kubectl("get", "crd", CRD, "-o", "json").stdout)
        conditions = (crd.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    wait_for(established, timeout=60, what=f"{CRD} established")
    yield


def _condition(platforms: Platforms, name: str, kind: str) -> dict[str, Any]:
    return platforms.condition(name, kind)


def test_without_cloudnativepg_the_platform_names_the_missing_crd(
    platforms: Platforms, without_cloudnativepg: None
) -> None:
    platforms.apply(platform_manifest("nocnpg", {"postgres": {"cloudNativePG": {}}}))
    pg = wait_for(
        lambda: (c := _condition(platforms, "nocnpg", "PostgresReady")).get("reason") == "CloudNativePGMissing" and c,
        timeout=60,
        what=lambda: f"PostgresReady CloudNativePGMissing: {_condition(platforms, 'nocnpg', 'PostgresReady')}",
    )
    assert pg["status"] == "False" and CRD in pg["message"]
    ready = _condition(platforms, "nocnpg", "Ready")
    assert ready["status"] == "False" and CRD in ready["message"]
    assert not [n for n in platforms.names("job") if "migrate" in n]  # nothing migrates against no database
    # Gone before the next test installs the CRD: a platform left in a namespace still terminating would try to
    # apply its own Cluster there, and the next test counts the operator's Cluster applies.
    platforms.kubectl("-n", platforms.ns, "delete", "vp", "nocnpg", "--wait=true", "--timeout=60s")


def test_garbage_is_refused_by_the_api_server(kubectl: Kubectl, namespace: str) -> None:
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"postgres": {"cloudNativePG": {"instances": 0}}}, ["spec.postgres.cloudNativePG.instances", "1"]),
        ({"postgres": {"cloudNativePG": {"instances": 10}}}, ["spec.postgres.cloudNativePG.instances", "9"]),
        (
            {"postgres": {"managed": {}, "cloudNativePG": {}}},
            ["spec.postgres", "exactly one of postgres.managed, postgres.external or postgres.cloudNativePG"],
        ),
        (
            {"postgres": {"cloudNativePG": {}, "external": {"host": "db", "credentialsSecretRef": {"name": "s"}}}},
            ["exactly one of postgres.managed, postgres.external or postgres.cloudNativePG"],
        ),
        (
            {"postgres": {"cloudNativePG": {"storage": {"size": "lots"}}}},
            ["spec.postgres.cloudNativePG.storage.size", "Kubernetes quantity"],
        ),
        (
            {"redis": {"managed": {"persistence": {"enabled": "yes"}}}},
            ["spec.redis.managed.persistence.enabled"],
        ),
        (
            {"redis": {"managed": {"persistence": {"enabled": True, "size": "big"}}}},
            ["spec.redis.managed.persistence.size", "Kubernetes quantity"],
        ),
    ]
    for spec, expected in cases:
        result = kubectl(
            "-n",
            namespace,
            "apply",
            "--dry-run=server",
            "-f",
            "-",
            input=json.dumps(platform_manifest("bad", spec)),
            check=False,
        )
        output = result.stderr + result.stdout
        assert result.returncode != 0, f"{spec} was accepted"
        for text in expected:
            assert text in output, f"{spec}: {text!r} not in {output}"


def _cluster_ready_status(generation: int) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "status": {
            "instances": 3,
            "readyInstances": 3,
            "phase": "Cluster in healthy state",
            "writeService": "ha-postgres-rw",
            "readService": "ha-postgres-r",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "ClusterIsReady",
                    "message": "Cluster is Ready",
                    "lastTransitionTime": now,
                    "observedGeneration": generation,
                }
            ],
        }
    }


def _cluster_applies(operator: OperatorProcess) -> float:
    return sum(
        v
        for k, v in operator.metrics().items()
        if k.startswith("venta_operator_api_requests_total{") and "kind=Cluster," in k and "verb=apply" in k
    )


def test_cluster_is_created_waited_for_and_used(
    platforms: Platforms, kubectl: Kubectl, operator: OperatorProcess, with_cloudnativepg: None
) -> None:
    ns = platforms.ns
    spec = {
        "postgres": {"cloudNativePG": {"instances": 3, "storage": {"size": "2Gi"}}},
        "redis": {"managed": {"persistence": {"enabled": True}}},
    }
    platforms.apply(platform_manifest("ha", spec))
    cluster = wait_for(
        lambda: platforms.get("cluster.postgresql.cnpg.io", "ha-postgres"), timeout=60, what="the Cluster"
    )
    assert cluster["spec"]["instances"] == 3 and cluster["spec"]["storage"]["size"] == "2Gi"
    initdb = cluster["spec"]["bootstrap"]["initdb"]
    assert initdb["owner"] == "venta" and initdb["database"] == "venta_users" and len(initdb["postInitSQL"]) == 4
    assert cluster["metadata"]["ownerReferences"][0]["kind"] == "VentaPlatform"

    # Redis with persistence: a StatefulSet, and the controller creates its claim from the template.
    sts = wait_for(lambda: platforms.get("statefulset", "ha-redis"), timeout=60, what="the Redis StatefulSet")
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert platforms.get("deployment", "ha-redis") is None
    wait_for(lambda: platforms.get("pvc", "data-ha-redis-0"), timeout=60, what="the Redis volume claim")

    # CloudNativePG has not reported the cluster ready: the platform waits, and says on what.
    wait_for(
        lambda: _condition(platforms, "ha", "PostgresReady").get("reason") == "ClusterNotReady",
        timeout=60,
        what=lambda: f"PostgresReady ClusterNotReady: {_condition(platforms, 'ha', 'PostgresReady')}",
    )
    time.sleep(3)
    assert _condition(platforms, "ha", "PostgresReady")["status"] == "False"
    assert not [n for n in platforms.names("job") if "migrate" in n]

    # What CloudNativePG would do: generate the application credentials, bring the instances up, report Ready.
    kubectl(
        "-n", ns, "create", "secret", "generic", "ha-postgres-app",
        "--from-literal=username=venta", "--from-literal=password=generated",
    )  # fmt: skip
    generation = int(cluster["metadata"]["generation"])
    kubectl(
        "-n", ns, "patch", "cluster.postgresql.cnpg.io", "ha-postgres", "--subresource=status", "--type=merge",
        "-p", json.dumps(_cluster_ready_status(generation)),
    )  # fmt: skip
    pg = wait_for(
        lambda: (c := _condition(platforms, "ha", "PostgresReady")).get("status") == "True" and c,
        timeout=60,
        what=lambda: f"PostgresReady True: {_condition(platforms, 'ha', 'PostgresReady')}",
    )
    assert pg["reason"] == "ClusterReady"

    job_name = wait_for(
        lambda: next((n for n in platforms.names("job") if "migrate" in n), None), timeout=60, what="the migration Job"
    )
    job = platforms.get("job", job_name)
    assert job is not None
    env = {e["name"]: e.get("valueFrom") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["VENTA_DB_USER"] == {"secretKeyRef": {"name": "ha-postgres-app", "key": "username"}}
    assert env["VENTA_DB_PASSWORD"] == {"secretKeyRef": {"name": "ha-postgres-app", "key": "password"}}
    config = platforms.get("configmap", "ha-config")
    assert config is not None and config["data"]["VENTA_DB_HOST"] == f"ha-postgres-rw.{ns}.svc"

    vp = platforms.wait_ready("ha", timeout=240)
    assert vp["status"]["components"]["postgres"]["readyReplicas"] == 3

    # Converged: drift passes (every 4 s here) find the Cluster as desired, server-side defaults and all.
    cluster = platforms.get("cluster.postgresql.cnpg.io", "ha-postgres")
    assert cluster is not None
    assert cluster["spec"]["storage"].get("resizeInUseVolumes") is True  # a default the API server added
    before = _cluster_applies(operator)
    time.sleep(10)
    assert _cluster_applies(operator) == before
    after = platforms.get("cluster.postgresql.cnpg.io", "ha-postgres")
    assert after is not None and after["metadata"]["resourceVersion"] == cluster["metadata"]["resourceVersion"]

    # Switching to another PostgreSQL on an existing platform would leave the data behind: refused.
    switch: dict[str, Any] = {"spec": {"postgres": {"cloudNativePG": None, "managed": {}}}}
    result = kubectl("-n", ns, "patch", "vp", "ha", "--type=merge", "-p", json.dumps(switch), check=False)
    assert result.returncode != 0 and "cannot be switched on or off" in result.stderr, result.stderr
