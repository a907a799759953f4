"""One platform, from `kubectl apply` of the example to Ready, then every day-2 operation an SRE performs on it.

The tests share one converged platform (module scope) and run in file order: the read-only checks first, then the
changes, each of which ends converged again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.kwok import Kubectl
from tests.support.operator_e2e import ROOT, OperatorProcess, Platforms, wait_for

pytestmark = pytest.mark.cluster

NAME = "venta"
SERVICES = {"users", "location", "vendors", "gateway", "websocket", "search-sync", "notifications", "identity"}


@pytest.fixture(scope="module")
def vp(kubectl: Kubectl, shared_namespace: str, operator: OperatorProcess) -> Iterator[Platforms]:
    platforms = Platforms(kubectl, shared_namespace)
    platforms.apply_file(ROOT / "docs" / "examples" / "minimal.yaml")
    platforms.wait_ready(NAME, timeout=240)
    yield platforms


def deployment(vp: Platforms, component: str) -> dict[str, Any]:
    found = vp.get("deployment", f"{NAME}-{component}")
    assert found is not None, component
    return found


def test_example_converges_to_ready(vp: Platforms) -> None:
    platform = vp.wait_ready(NAME)
    status = platform["status"]
    assert status["observedGeneration"] == platform["metadata"]["generation"]
    assert status["version"] == "0.1.0"
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    for kind in ("Ready", "GatewayReady", "SearchSyncReady", "NatsReady", "PostgresReady", "RedisReady", "Migrated"):
        assert conditions[kind] == "True", kind
    assert conditions["Degraded"] == "False" and conditions["Progressing"] == "False"
    assert status["components"]["gateway"]["readyReplicas"] == 2
    assert status["endpoints"]["gateway"] == f"http://{NAME}-gateway.{vp.ns}.svc:5002"
    assert vp.names("deployment") == {f"{NAME}-{s}" for s in SERVICES} | {f"{NAME}-redis"}
    assert vp.names("statefulset") == {f"{NAME}-nats", f"{NAME}-postgres"}
    assert vp.names("cronjob") == {f"{NAME}-reindex"}
    claims = json.loads(vp.kubectl("-n", vp.ns, "get", "pvc", "-o", "json").stdout)["items"]
    assert {c["status"]["phase"] for c in claims} == {"Bound"} and len(claims) == 2


def test_printer_columns(vp: Platforms) -> None:
    lines = vp.kubectl("-n", vp.ns, "get", "vp").stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "VERSION", "GATEWAY", "AGE"]
    assert lines[1].split()[:4] == [NAME, "True", "0.1.0", f"http://{NAME}-gateway.{vp.ns}.svc:5002"]


def test_every_child_is_owned_by_the_platform(vp: Platforms) -> None:
    uid = (vp.get("vp", NAME) or {})["metadata"]["uid"]
    kinds = "deployments,statefulsets,services,configmaps,secrets,jobs,cronjobs,poddisruptionbudgets,serviceaccounts"
    items = json.loads(
        vp.kubectl("-n", vp.ns, "get", kinds, "-l", f"app.kubernetes.io/instance={NAME}", "-o", "json").stdout
    )["items"]
    assert len(items) >= 30
    for item in items:
        refs = item["metadata"].get("ownerReferences", [])
        assert [r["uid"] for r in refs if r.get("controller")] == [uid], item["metadata"]["name"]


def test_secrets_generated_once_and_never_in_the_spec(vp: Platforms) -> None:
    secret = vp.get("secret", f"{NAME}-postgres-credentials")
    assert secret is not None and set(secret["data"]) == {"username", "password", "admin-password"}
    spec = json.dumps((vp.get("vp", NAME) or {})["spec"])
    assert secret["data"]["password"] not in spec


def test_events_record_what_the_operator_did(vp: Platforms) -> None:
    out = vp.kubectl(
        "-n",
        vp.ns,
        "get",
        "events",
        "--field-selector",
        f"involvedObject.kind=VentaPlatform,involvedObject.name={NAME}",
        "-o",
        "json",
    ).stdout
    reasons = {e["reason"] for e in json.loads(out)["items"]}
    assert {"Applied", "Ready"} <= reasons


def test_converged_platform_costs_no_writes(vp: Platforms, operator: OperatorProcess) -> None:
    vp.wait_ready(NAME)
    time.sleep(2)
    before, timer_before = (
        operator.writes(),
        operator.metrics().get("venta_operator_reconciles_total{trigger=timer}", 0),
    )
    time.sleep(10)  # at least two drift passes (every 4 s in these tests)
    after, timer_after = operator.writes(), operator.metrics()["venta_operator_reconciles_total{trigger=timer}"]
    assert timer_after >= timer_before + 2
    assert after == before


def test_deleted_deployment_is_recreated(vp: Platforms) -> None:
    vp.kubectl("-n", vp.ns, "delete", "deployment", f"{NAME}-gateway", "--wait=true")
    wait_for(lambda: vp.get("deployment", f"{NAME}-gateway"), timeout=30, what="the gateway Deployment back")
    vp.wait_ready(NAME)


def test_hand_edit_is_reverted(vp: Platforms) -> None:
    vp.kubectl("-n", vp.ns, "scale", "deployment", f"{NAME}-users", "--replicas=4")
    wait_for(lambda: deployment(vp, "users")["spec"]["replicas"] == 1, timeout=30, what="users back to 1 replica")


def test_scale_subresource_scales_the_gateway(vp: Platforms) -> None:
    vp.kubectl("-n", vp.ns, "scale", "vp", NAME, "--replicas=3")
    wait_for(lambda: deployment(vp, "gateway")["spec"]["replicas"] == 3, timeout=30, what="gateway at 3")
    platform = vp.wait_ready(NAME)
    assert platform["status"]["components"]["gateway"]["readyReplicas"] == 3
    scale = json.loads(
        vp.kubectl(
            "-n", vp.ns, "get", "--raw", f"/apis/venta.io/v1alpha1/namespaces/{vp.ns}/ventaplatforms/{NAME}/scale"
        ).stdout
    )
    assert scale["status"]["replicas"] == 3 and "app.kubernetes.io/component=gateway" in scale["status"]["selector"]


def test_setting_change_rolls_pods_through_the_checksum(vp: Platforms) -> None:
    def checksum() -> str:
        return str(deployment(vp, "vendors")["spec"]["template"]["metadata"]["annotations"]["venta.io/config-checksum"])

    before = checksum()
    vp.patch(NAME, {"spec": {"observability": {"logLevel": "DEBUG"}}})
    wait_for(
        lambda: (vp.get("configmap", f"{NAME}-config") or {}).get("data", {}).get("VENTA_LOG_LEVEL") == "DEBUG",
        timeout=30,
        what="the ConfigMap to carry the new level",
    )
    wait_for(lambda: checksum() != before, timeout=30, what="a new checksum on the pod template")
    vp.wait_ready(NAME)
    sets = json.loads(
        vp.kubectl("-n", vp.ns, "get", "replicasets", "-l", "app.kubernetes.io/component=vendors", "-o", "json").stdout
    )["items"]
    assert len(sets) == 2, "a new ReplicaSet: the pods were rolled"


def test_version_change_migrates_then_rolls(vp: Platforms) -> None:
    old_jobs = {j for j in vp.names("job") if "-migrate-" in j}
    vp.patch(NAME, {"spec": {"version": "0.2.0"}})
    new_job = wait_for(
        lambda: {j for j in vp.names("job") if "-migrate-" in j} - old_jobs,
        timeout=30,
        what="a migration Job for 0.2.0",
    )
    platform = vp.wait_ready(NAME)
    assert platform["status"]["version"] == "0.2.0"
    for component in SERVICES:
        image = deployment(vp, component)["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image.endswith(":0.2.0"), component
    assert {j for j in vp.names("job") if "-migrate-" in j} == new_job, "the old migration Job is pruned"


def test_pause_stops_reconciliation_and_resume_restarts_it(vp: Platforms) -> None:
    vp.kubectl("-n", vp.ns, "annotate", "vp", NAME, "venta.io/pause-reconciliation=true", "--overwrite")
    wait_for(
        lambda: (vp.get("vp", NAME) or {}).get("status", {}).get("paused") is True, timeout=30, what="status.paused"
    )
    assert vp.condition(NAME, "Progressing")["reason"] == "ReconciliationPaused"
    vp.kubectl("-n", vp.ns, "delete", "deployment", f"{NAME}-websocket", "--wait=true")
    time.sleep(10)  # two drift passes would have recreated it
    assert vp.get("deployment", f"{NAME}-websocket") is None
    vp.kubectl("-n", vp.ns, "annotate", "vp", NAME, "venta.io/pause-reconciliation-")
    wait_for(lambda: vp.get("deployment", f"{NAME}-websocket"), timeout=30, what="websocket back after resume")
    platform = vp.wait_ready(NAME)
    assert platform["status"]["paused"] is False


def test_volume_size_cannot_change(vp: Platforms) -> None:
    result = vp.kubectl(
        "-n",
        vp.ns,
        "patch",
        "vp",
        NAME,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"postgres": {"managed": {"storage": {"size": "20Gi"}}}}}),
        check=False,
    )
    assert result.returncode != 0
    assert "spec.postgres.managed.storage.size" in result.stderr and "cannot change" in result.stderr
