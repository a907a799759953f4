"""Status: conditions from live children, stable transition times, and a patch only of what changed."""

from __future__ import annotations

from typing import Any

from tests.support.operator_plans import EXTERNAL, make
from venta_operator.builders.job import migration_job_name
from venta_operator.components import APP_COMPONENTS, IDENTITY
from venta_operator.status import Observation, compute, status_patch

NOW, LATER = "2024-05-01T10:00:00Z", "2024-05-01T10:05:00Z"


def ready_deployment(name: str, replicas: int, version: str = "1.2.3") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "generation": 2},
        "spec": {"replicas": replicas, "template": {"metadata": {"labels": {"app.kubernetes.io/version": version}}}},
        "status": {
            "observedGeneration": 2,
            "replicas": replicas,
            "readyReplicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": replicas,
        },
    }


def ready_statefulset(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "generation": 1},
        "spec": {"replicas": 1},
        "status": {
            "observedGeneration": 1,
            "replicas": 1,
            "readyReplicas": 1,
            "updatedReplicas": 1,
            "currentRevision": "r1",
            "updateRevision": "r1",
        },
    }


def healthy() -> dict[tuple[str, str], dict[str, Any]]:
    p = make()
    live: dict[tuple[str, str], dict[str, Any]] = {}
    for c in (*APP_COMPONENTS, IDENTITY):
        name = f"demo-{c.name}"
        live[("Deployment", name)] = ready_deployment(
            name, p.spec.services[c.key].replicas if c.key in p.spec.services else 1
        )
    live[("Deployment", "demo-redis")] = ready_deployment("demo-redis", 1)
    live[("StatefulSet", "demo-nats")] = ready_statefulset("demo-nats")
    live[("StatefulSet", "demo-postgres")] = ready_statefulset("demo-postgres")
    job = migration_job_name(p)
    live[("Job", job)] = {"metadata": {"name": job}, "status": {"succeeded": 1, "completionTime": NOW}}
    live[("Job", "demo-reindex-initial")] = {
        "metadata": {"name": "demo-reindex-initial"},
        "status": {"succeeded": 1, "completionTime": NOW},
    }
    return live


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def test_all_ready() -> None:
    status = compute(make(), Observation(live=healthy(), generation=2, now=NOW, stage="seeding"))
    conds = conditions(status)
    assert conds["Ready"]["status"] == "True" and conds["Ready"]["observedGeneration"] == 2
    assert conds["Progressing"]["status"] == "False" and conds["Degraded"]["status"] == "False"
    assert conds["GatewayReady"]["status"] == "True" and conds["SearchSyncReady"]["status"] == "True"
    assert conds["Migrated"]["status"] == "True"
    assert status["observedGeneration"] == 2 and status["version"] == "1.2.3"
    assert status["components"]["gateway"] == {
        "desiredReplicas": 2,
        "replicas": 2,
        "readyReplicas": 2,
        "updatedReplicas": 2,
    }
    assert status["endpoints"]["gateway"] == "http://demo-gateway.shop.svc:5002"
    assert status["lastReindex"] == {"job": "demo-reindex-initial", "completionTime": NOW}
    assert "app.kubernetes.io/component=gateway" in status["gatewaySelector"]


def test_rolling_component_is_progressing() -> None:
    live = healthy()
    live[("Deployment", "demo-vendors")]["status"]["readyReplicas"] = 0
    conds = conditions(compute(make(), Observation(live=live, generation=2, now=NOW, stage="rollout")))
    assert conds["Ready"]["status"] == "False" and conds["Ready"]["reason"] == "ComponentsNotReady"
    assert "vendors" in conds["Ready"]["message"]
    assert conds["Progressing"]["status"] == "True" and conds["VendorsReady"]["status"] == "False"


def test_failed_migration_is_degraded_and_keeps_the_old_version() -> None:
    p = make({"version": "2.0.0"})
    live = healthy()
    live[("Job", migration_job_name(p))] = {
        "metadata": {"name": "m"},
        "status": {
            "conditions": [
                {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "too many failures"}
            ]
        },
    }
    status = compute(p, Observation(live=live, generation=3, now=NOW, stage="migration", previous={"version": "1.2.3"}))
    conds = conditions(status)
    assert conds["Degraded"]["status"] == "True" and "too many failures" in conds["Degraded"]["message"]
    assert conds["Migrated"]["reason"] == "Failed"
    assert status["version"] == "1.2.3" and status["migration"]["state"] == "Failed"


def test_paused_is_shown() -> None:
    status = compute(
        make(),
        Observation(live=healthy(), generation=3, now=NOW, paused=True, previous={"observedGeneration": 2}),
    )
    assert status["paused"] is True
    assert conditions(status)["Progressing"]["reason"] == "ReconciliationPaused"
    assert status["observedGeneration"] == 2  # generation 3 is not acted on while paused


def test_patch_removes_vanished_map_keys() -> None:
    current = {"components": {"identity": {"replicas": 1}, "users": {"replicas": 1}}, "version": "1"}
    new = {"components": {"users": {"replicas": 1}}, "version": "1"}
    assert status_patch(new, current) == {"components": {"users": {"replicas": 1}, "identity": None}}


def test_missing_secret_reference_is_degraded() -> None:
    obs = Observation(live=healthy(), generation=2, now=NOW, problems=["Secret pg (key password) not found"])
    conds = conditions(compute(make(), obs))
    assert conds["Ready"]["status"] == "False" and "Secret pg" in conds["Degraded"]["message"]


def test_unchanged_status_makes_an_empty_patch() -> None:
    first = compute(make(), Observation(live=healthy(), generation=2, now=NOW))
    second = compute(make(), Observation(live=healthy(), generation=2, now=LATER, previous=first))
    assert second == first  # transition times kept
    assert status_patch(second, first) == {}
    live = healthy()
    live[("Deployment", "demo-users")]["status"]["readyReplicas"] = 0
    third = compute(make(), Observation(live=live, generation=2, now=LATER, previous=first))
    patch = status_patch(third, first)
    assert set(patch) == {"conditions", "components"}
    assert conditions(third)["UsersReady"]["lastTransitionTime"] == LATER
    assert conditions(third)["NatsReady"]["lastTransitionTime"] == NOW


def test_external_stores_are_ready_by_declaration() -> None:
    p = make(EXTERNAL)
    status = compute(p, Observation(live={}, generation=1, now=NOW))
    assert conditions(status)["PostgresReady"]["reason"] == "External"
    assert status["endpoints"]["postgres"] == "db.example:5432"
