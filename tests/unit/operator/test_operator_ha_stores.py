"""PostgreSQL delegated to CloudNativePG, and the managed Redis with persistence: builders, plan gate, status.

The same behaviour on a real API server, with CloudNativePG's own CRD installed, is in
tests/e2e/operator/test_operator_cloudnativepg.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.operator_plans import ALL_DONE, by_key, env_of, full_plan, make
from venta_operator.builders.cloudnativepg import CNPG_API, CNPG_KINDS, cnpg_cluster
from venta_operator.builders.deployment import redis_deployment
from venta_operator.builders.networkpolicy import network_policies
from venta_operator.builders.redis import redis_statefulset
from venta_operator.builders.secret import generated_secret_names
from venta_operator.builders.service import services
from venta_operator.components import DATABASES
from venta_operator.endpoints import status_endpoints
from venta_operator.plan import Facts
from venta_operator.spec import SpecError, parse_spec
from venta_operator.status import Observation, compute, store_readiness

CNPG: dict[str, Any] = {"postgres": {"cloudNativePG": {}}}
PERSISTENT: dict[str, Any] = {"redis": {"managed": {"persistence": {"enabled": True}}}}


def test_cluster_bootstraps_the_role_and_every_service_database() -> None:
    cluster = cnpg_cluster(make(CNPG), CNPG_KINDS)
    assert cluster is not None
    assert cluster["apiVersion"] == CNPG_API and cluster["kind"] == "Cluster"
    assert cluster["metadata"]["name"] == "demo-postgres"
    spec = cluster["spec"]
    assert spec["instances"] == 3 and spec["storage"] == {"size": "5Gi"}
    assert spec["enableSuperuserAccess"] is False and "imageName" not in spec
    initdb = spec["bootstrap"]["initdb"]
    created = [initdb["database"]] + [s.split('"')[1] for s in initdb["postInitSQL"]]
    assert sorted(created) == sorted(DATABASES)
    assert initdb["owner"] == "venta"
    assert all(s.endswith('OWNER "venta"') and s.startswith("CREATE DATABASE ") for s in initdb["postInitSQL"])
    assert spec["resources"]["limits"] == {"cpu": "2", "memory": "1Gi"}


def test_cluster_takes_the_spec_instances_storage_and_image() -> None:
    spec = {"instances": 5, "storage": {"size": "20Gi", "storageClassName": "fast"}, "imageName": "pg:16.4"}
    cluster = cnpg_cluster(make({"postgres": {"cloudNativePG": spec}}), CNPG_KINDS)
    assert cluster is not None
    assert cluster["spec"]["instances"] == 5
    assert cluster["spec"]["storage"] == {"size": "20Gi", "storageClass": "fast"}
    assert cluster["spec"]["imageName"] == "pg:16.4"


def test_no_cluster_without_the_crd_or_without_the_choice() -> None:
    assert cnpg_cluster(make(CNPG), frozenset()) is None
    assert cnpg_cluster(make(), CNPG_KINDS) is None


def test_services_and_migration_use_the_rw_service_and_the_app_secret() -> None:
    plan = by_key(full_plan(make(CNPG), kinds=CNPG_KINDS).apply)
    assert ("Cluster", "demo-postgres") in plan
    assert ("StatefulSet", "demo-postgres") not in plan and ("ConfigMap", "demo-postgres-init") not in plan
    assert not [k for k in plan if k[0] == "Service" and k[1].startswith("demo-postgres")]  # CloudNativePG's own
    assert plan[("ConfigMap", "demo-config")]["data"]["VENTA_DB_HOST"] == "demo-postgres-rw.shop.svc"
    assert plan[("ConfigMap", "demo-config")]["data"]["VENTA_DB_PORT"] == "5432"
    migration = next(m for k, m in plan.items() if k[0] == "Job" and "migrate" in k[1])
    env = env_of(migration["spec"]["template"]["spec"]["containers"][0])
    assert env["VENTA_DB_USER"] == {"secretKeyRef": {"name": "demo-postgres-app", "key": "username"}}
    assert env["VENTA_DB_PASSWORD"] == {"secretKeyRef": {"name": "demo-postgres-app", "key": "password"}}
    users = env_of(plan[("Deployment", "demo-users")]["spec"]["template"]["spec"]["containers"][0])
    assert users["VENTA_DB_PASSWORD"] == {"secretKeyRef": {"name": "demo-postgres-app", "key": "password"}}
    assert "demo-postgres-credentials" not in generated_secret_names(make(CNPG))
    assert status_endpoints(make(CNPG))["postgres"] == "demo-postgres-rw.shop.svc:5432"


def test_the_migration_waits_for_the_cluster() -> None:
    p = make(CNPG)
    waiting = full_plan(p, Facts(uid="u"), CNPG_KINDS)
    assert waiting.stage == "foundation" and not [m for m in waiting.apply if m["kind"] == "Job"]
    assert ("Cluster", "demo-postgres") in by_key(waiting.apply)
    assert full_plan(p, Facts(uid="u", postgres_ready=True), CNPG_KINDS).stage == "migration"
    missing = full_plan(p, ALL_DONE, frozenset())  # no CRD: nothing to create, nothing to wait on that could come
    assert not [m for m in missing.apply if m["kind"] == "Cluster"]


def _cluster(status: dict[str, Any], instances: int = 3, generation: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": CNPG_API,
        "kind": "Cluster",
        "metadata": {"name": "demo-postgres", "generation": generation},
        "spec": {"instances": instances},
        "status": status,
    }


HEALTHY = {
    "phase": "Cluster in healthy state",
    "instances": 3,
    "readyInstances": 3,
    "conditions": [{"type": "Ready", "status": "True", "reason": "ClusterIsReady", "observedGeneration": 1}],
}


@pytest.mark.parametrize(
    ("status", "ready"),
    [
        (HEALTHY, True),
        ({}, False),
        ({**HEALTHY, "readyInstances": 2}, False),
        ({**HEALTHY, "conditions": [{"type": "Ready", "status": "False", "reason": "ClusterIsNotReady"}]}, False),
        ({**HEALTHY, "conditions": [{"type": "Ready", "status": "True", "observedGeneration": 0}]}, True),
    ],
)
def test_postgres_ready_mirrors_the_cluster(status: dict[str, Any], ready: bool) -> None:
    live = {("Cluster", "demo-postgres"): _cluster(status)}
    r = store_readiness(make(CNPG), "postgres", live, CNPG_KINDS)
    assert r.ready is ready, r
    if not ready:
        assert "demo-postgres" in r.message


def test_a_stale_ready_condition_is_not_ready() -> None:
    stale = {**HEALTHY, "conditions": [{"type": "Ready", "status": "True", "observedGeneration": 1}]}
    live = {("Cluster", "demo-postgres"): _cluster(stale, generation=2)}
    assert not store_readiness(make(CNPG), "postgres", live, CNPG_KINDS).ready


def test_without_the_crd_the_status_names_it() -> None:
    status = compute(make(CNPG), Observation(live={}, generation=1, now="2026-01-01T00:00:00Z"))
    conditions = {c["type"]: c for c in status["conditions"]}
    pg = conditions["PostgresReady"]
    assert pg["status"] == "False" and pg["reason"] == "CloudNativePGMissing"
    assert "clusters.postgresql.cnpg.io" in pg["message"]
    assert conditions["Ready"]["status"] == "False" and "clusters.postgresql.cnpg.io" in conditions["Ready"]["message"]
    served = compute(
        make(CNPG), Observation(live={}, generation=1, now="2026-01-01T00:00:00Z", available_kinds=CNPG_KINDS)
    )
    assert {c["type"]: c for c in served["conditions"]}["PostgresReady"]["reason"] == "NotCreated"


@pytest.mark.parametrize(
    ("postgres", "message"),
    [
        ({"cloudNativePG": {}, "managed": {}}, "exactly one of managed, external or cloudNativePG"),
        ({}, "exactly one of managed, external or cloudNativePG"),
    ],
)
def test_spec_refuses_other_than_one_postgres(postgres: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_spec({"version": "1", "postgres": postgres})


def test_spec_refuses_garbage_in_cloudnativepg() -> None:
    with pytest.raises(SpecError, match="instances"):
        parse_spec({"version": "1", "postgres": {"cloudNativePG": {"instances": "three"}}})


# -- Redis ---------------------------------------------------------------------------------------------------------


def test_redis_without_persistence_is_todays_deployment() -> None:
    p = make()
    deployment = redis_deployment(p)
    assert deployment is not None and redis_statefulset(p) is None
    pod = deployment["spec"]["template"]["spec"]
    assert {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}} in pod["volumes"]
    args = pod["containers"][0]["args"]
    assert args[args.index("--appendonly") + 1] == "no"
    assert ("Service", "demo-redis-headless") not in by_key(services(p))


def test_redis_with_persistence_is_a_statefulset_keeping_the_aof_on_its_volume() -> None:
    p = make({"redis": {"managed": {"persistence": {"enabled": True, "size": "2Gi", "storageClassName": "fast"}}}})
    assert redis_deployment(p) is None
    sts = redis_statefulset(p)
    assert sts is not None and sts["metadata"]["name"] == "demo-redis"
    spec = sts["spec"]
    assert spec["replicas"] == 1 and spec["serviceName"] == "demo-redis-headless"
    claim = spec["volumeClaimTemplates"][0]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "2Gi"}},
        "storageClassName": "fast",
    }
    assert spec["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"
    pod = spec["template"]["spec"]
    assert not [v for v in pod["volumes"] if v["name"] == "data"]  # the claim template provides it
    redis = pod["containers"][0]
    assert {"name": "data", "mountPath": "/data"} in redis["volumeMounts"]
    args = redis["args"]
    assert args[args.index("--appendonly") + 1] == "yes" and args[args.index("--dir") + 1] == "/data"
    # the same selector as the Deployment's: the Service and the NetworkPolicy select the same pods
    cache = redis_deployment(make())
    assert cache is not None and spec["selector"] == cache["spec"]["selector"]
    plan = by_key(full_plan(p).apply)
    assert ("StatefulSet", "demo-redis") in plan and ("Deployment", "demo-redis") not in plan
    assert plan[("Service", "demo-redis")] == by_key(full_plan(make()).apply)[("Service", "demo-redis")]
    assert plan[("Service", "demo-redis-headless")]["spec"]["clusterIP"] == "None"
    assert by_key(network_policies(p)) == by_key(network_policies(make()))


def test_redis_volume_can_outlive_the_platform() -> None:
    sts = redis_statefulset(
        make({"redis": {"managed": {"persistence": {"enabled": True, "deleteWithPlatform": False}}}})
    )
    assert sts is not None and sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"


def test_redis_readiness_follows_the_kind() -> None:
    p = make(PERSISTENT)
    sts = redis_statefulset(p)
    assert sts is not None
    sts = {
        **sts,
        "metadata": {**sts["metadata"], "generation": 1},
        "status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1, "updatedReplicas": 1},
    }
    assert store_readiness(p, "redis", {("StatefulSet", "demo-redis"): sts}).ready
    assert not store_readiness(p, "redis", {("Deployment", "demo-redis"): sts}).ready
    assert store_readiness(p, "redis", {}).reason == "NotCreated"


def test_spec_refuses_garbage_in_redis_persistence() -> None:
    with pytest.raises(SpecError, match="enabled"):
        parse_spec({"version": "1", "redis": {"managed": {"persistence": {"enabled": "sometimes"}}}})
