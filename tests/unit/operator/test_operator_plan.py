"""The plan: stages gate the rollout on the migration, every child is owned, pruning waits for a complete set."""

from __future__ import annotations

from typing import Any

from tests.support.operator_plans import ALL_DONE, EXTERNAL, full_plan, make
from venta_operator.naming import ANNOTATION_DESIRED_HASH
from venta_operator.plan import Facts, desired


def kinds(plan: Any) -> set[str]:
    return {m["kind"] for m in plan.apply}


def test_nothing_rolls_before_postgres_is_ready() -> None:
    plan = desired(make(), Facts(uid="u"))
    assert plan.stage == "foundation" and not plan.prune
    assert "Job" not in kinds(plan)
    assert not [m for m in plan.apply if m["kind"] == "Deployment" and m["metadata"]["name"] != "demo-redis"]
    assert {"StatefulSet", "ConfigMap", "Service", "ServiceAccount"} <= kinds(plan)


def test_migration_gates_the_service_deployments() -> None:
    plan = desired(make(), Facts(uid="u", postgres_ready=True))
    assert plan.stage == "migration" and not plan.prune
    assert next(m["metadata"]["name"] for m in plan.apply if m["kind"] == "Job").startswith("demo-migrate-")
    assert ("Deployment", "demo-gateway") not in {(m["kind"], m["metadata"]["name"]) for m in plan.apply}


def test_external_postgres_migrates_at_once() -> None:
    plan = desired(make(EXTERNAL), Facts(uid="u"))
    assert plan.stage == "migration"


def test_rollout_then_seeding() -> None:
    rollout = desired(make(), Facts(uid="u", postgres_ready=True, migration_complete=True))
    assert rollout.stage == "rollout" and rollout.prune
    assert {"Deployment", "CronJob", "PodDisruptionBudget"} <= kinds(rollout)
    assert ("Job", "demo-reindex-initial") in rollout.keep
    seeding = desired(make(), ALL_DONE)
    assert seeding.stage == "seeding"
    assert "demo-reindex-initial" in {m["metadata"]["name"] for m in seeding.apply}
    done = desired(make(), Facts(**{**ALL_DONE.__dict__, "reindexed": True}))
    assert "demo-reindex-initial" not in {m["metadata"]["name"] for m in done.apply}
    no_seed = desired(make({"search": {"reindexOnCreate": False, "reindexSchedule": ""}}), ALL_DONE)
    assert not [m for m in no_seed.apply if "reindex" in m["metadata"]["name"]]


def test_every_child_is_owned_and_hashed() -> None:
    plan = full_plan(make())
    for m in plan.apply:
        (ref,) = m["metadata"]["ownerReferences"]
        assert ref == {
            "apiVersion": "venta.io/v1alpha1",
            "kind": "VentaPlatform",
            "name": "demo",
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
        assert len(m["metadata"]["annotations"][ANNOTATION_DESIRED_HASH]) == 16
        assert m["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "venta-operator"
        assert m["metadata"]["namespace"] == "shop"
    assert {("Secret", "demo-postgres-credentials"), ("Secret", "demo-redis-credentials")} <= plan.keep


def test_hash_changes_only_with_the_child() -> None:
    def hashes(spec: dict[str, Any]) -> dict[tuple[str, str], str]:
        return {
            (m["kind"], m["metadata"]["name"]): m["metadata"]["annotations"][ANNOTATION_DESIRED_HASH]
            for m in full_plan(make(spec)).apply
        }

    base, scaled = hashes({}), hashes({"services": {"vendors": {"replicas": 3}}})
    changed = {k for k in base if base[k] != scaled.get(k)}
    assert changed == {("Deployment", "demo-vendors")}
