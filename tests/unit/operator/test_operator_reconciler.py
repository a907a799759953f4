"""The reconcile pass against an in-memory API: staging, convergence, zero writes when converged, drift, pause."""

from __future__ import annotations

import asyncio
import base64
import copy
import gc
import warnings
from typing import Any

import pytest

from tests.support.operator_plans import ALGOLIA
from venta_operator.builders.secret import postgres_secret_name
from venta_operator.reconciler import Outcome, Reconciler
from venta_operator.render import render
from venta_operator.status import status_patch


def names(fake: Any, kind: str) -> set[str]:
    return {n for (k, _, n) in fake.objects if k == kind}


async def converge(fake: Any, rec: Reconciler, body: dict[str, Any], passes: int = 8) -> Outcome:
    """Run passes, letting the fake controllers settle in between, carrying the status like the API would."""
    outcome = await rec.reconcile(body)
    for _ in range(passes):
        if outcome.ready:
            break
        fake.settle()
        body["status"] = {**body["status"], **outcome.status}
        outcome = await rec.reconcile(body)
    body["status"] = {**body["status"], **outcome.status}
    return outcome


@pytest.fixture
def rec(fake_kube: Any) -> Reconciler:
    return Reconciler(fake_kube, new_password=lambda: "generated", new_signing_key=lambda: "PEM")


async def test_first_pass_builds_the_foundation_only(fake_kube: Any, rec: Reconciler) -> None:
    outcome = await rec.reconcile(fake_kube.body())
    assert outcome.stage == "foundation" and not outcome.ready
    assert names(fake_kube, "StatefulSet") == {"demo-nats", "demo-postgres"}
    assert names(fake_kube, "Secret") == {
        "demo-postgres-credentials",
        "demo-redis-credentials",
        "demo-identity-keys",
        "demo-identity-admin",
    }
    assert names(fake_kube, "Deployment") == {"demo-redis"}
    assert "Job" not in {k for (k, _, _) in fake_kube.objects}


async def test_stages_lead_to_ready(fake_kube: Any, rec: Reconciler) -> None:
    body = fake_kube.body()
    outcome = await converge(fake_kube, rec, body)
    assert outcome.ready, outcome.message
    assert {"demo-gateway", "demo-users", "demo-identity"} <= names(fake_kube, "Deployment")
    assert "demo-reindex-initial" in names(fake_kube, "Job")
    assert outcome.status["observedGeneration"] == 1 and outcome.status["version"] == "1.2.3"
    fake_kube.settle()  # Ready does not wait for the search index to be filled; the status records it later
    outcome = await rec.reconcile(body)
    assert outcome.status["lastReindex"]["job"] == "demo-reindex-initial"


async def test_converged_pass_writes_nothing(fake_kube: Any, rec: Reconciler) -> None:
    body = fake_kube.body()
    await converge(fake_kube, rec, body)
    fake_kube.requests.clear()
    outcome = await rec.reconcile(body)
    assert outcome.ready and outcome.writes == []
    assert fake_kube.writes() == 0
    assert status_patch(outcome.status, body["status"]) == {}
    assert fake_kube.requests["list"] == 12  # one labelled list per kind, nothing per child


async def test_deleted_and_edited_children_come_back(fake_kube: Any, rec: Reconciler) -> None:
    body = fake_kube.body()
    await converge(fake_kube, rec, body)
    del fake_kube.objects[("Deployment", "shop", "demo-gateway")]
    fake_kube.objects[("Deployment", "shop", "demo-users")]["spec"]["replicas"] = 9
    outcome = await rec.reconcile(body)
    assert sorted(outcome.writes) == ["Deployment/demo-gateway (missing)", "Deployment/demo-users (drifted)"]
    assert fake_kube.objects[("Deployment", "shop", "demo-users")]["spec"]["replicas"] == 1


async def test_pause_stops_every_write_and_shows_in_status(fake_kube: Any, rec: Reconciler) -> None:
    body = fake_kube.body()
    await converge(fake_kube, rec, body)
    del fake_kube.objects[("Deployment", "shop", "demo-gateway")]
    body["metadata"]["annotations"]["venta.io/pause-reconciliation"] = "true"
    fake_kube.requests.clear()
    outcome = await rec.reconcile(body)
    assert outcome.paused and fake_kube.writes() == 0
    assert outcome.status["paused"] is True
    assert "demo-gateway" not in names(fake_kube, "Deployment")
    body["metadata"]["annotations"]["venta.io/pause-reconciliation"] = "false"
    outcome = await rec.reconcile(body)
    assert "Deployment/demo-gateway (missing)" in outcome.writes


async def test_generated_credentials_are_never_rotated(fake_kube: Any) -> None:
    passwords = iter(["first", "second", "third", "fourth"])
    rec = Reconciler(fake_kube, new_password=lambda: next(passwords))
    body = fake_kube.body()
    await rec.reconcile(body)
    secret = fake_kube.objects[("Secret", "shop", "demo-postgres-credentials")]
    before = dict(secret["data"])
    await rec.reconcile(body)
    await rec.reconcile(fake_kube.body(spec={"observability": {"logLevel": "DEBUG"}}))
    assert fake_kube.objects[("Secret", "shop", "demo-postgres-credentials")]["data"] == before
    assert base64.b64decode(before["password"]) == b"first"


async def test_version_change_migrates_before_rolling(fake_kube: Any, rec: Reconciler) -> None:
    body = fake_kube.body()
    await converge(fake_kube, rec, body)
    old_jobs = {n for n in names(fake_kube, "Job") if "migrate" in n}
    body["spec"]["version"] = "2.0.0"
    body["metadata"]["generation"] = 2
    outcome = await rec.reconcile(body)
    assert outcome.stage == "migration" and not outcome.ready
    new_jobs = {n for n in names(fake_kube, "Job") if "migrate" in n} - old_jobs
    assert len(new_jobs) == 1
    image = fake_kube.objects[("Deployment", "shop", "demo-users")]["spec"]["template"]["spec"]["containers"][0]
    assert image["image"].endswith(":1.2.3")  # held back until the migration completes
    assert outcome.status["version"] == "1.2.3"
    outcome = await converge(fake_kube, rec, body)
    assert outcome.ready and outcome.status["version"] == "2.0.0" and outcome.status["observedGeneration"] == 2
    assert {n for n in names(fake_kube, "Job") if "migrate" in n} == new_jobs  # the old one is pruned
    image = fake_kube.objects[("Deployment", "shop", "demo-users")]["spec"]["template"]["spec"]["containers"][0]
    assert image["image"].endswith(":2.0.0")


async def test_disabled_features_are_pruned(fake_kube: Any, rec: Reconciler) -> None:
    body = fake_kube.body(
        spec={"services": {"users": {"autoscaling": {"enabled": True}}}, "networkPolicy": {"enabled": True}}
    )
    await converge(fake_kube, rec, body)
    assert "demo-users" in names(fake_kube, "HorizontalPodAutoscaler")
    assert "demo-default-deny" in names(fake_kube, "NetworkPolicy")
    body["spec"] = {"version": "1.2.3", "networkPolicy": {"enabled": False}}
    outcome = await rec.reconcile(body)
    assert names(fake_kube, "HorizontalPodAutoscaler") == set()
    assert names(fake_kube, "NetworkPolicy") == set()
    assert "HorizontalPodAutoscaler/demo-users (pruned)" in outcome.writes


async def test_missing_secret_reference_degrades(fake_kube: Any, rec: Reconciler) -> None:
    body = fake_kube.body(spec={"search": ALGOLIA})
    outcome = await rec.reconcile(body)
    degraded = next(c for c in outcome.status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True" and "Secret algolia (key k) not found" in degraded["message"]
    fake_kube.objects[("Secret", "shop", "algolia")] = {"metadata": {"name": "algolia"}, "data": {"k": "eA=="}}
    outcome = await rec.reconcile(body)
    degraded = next(c for c in outcome.status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "False"


async def test_apply_failures_are_reported_and_block_pruning(fake_kube: Any, rec: Reconciler) -> None:
    body = fake_kube.body()
    await converge(fake_kube, rec, body)
    fake_kube.fail_apply = {"Deployment"}
    body["spec"]["services"] = {"users": {"replicas": 3}}
    fake_kube.requests.clear()
    outcome = await rec.reconcile(body)
    assert outcome.errors and "Deployment/demo-users" in outcome.errors[0].message
    assert fake_kube.requests["delete"] == 0
    assert not outcome.ready


async def test_monitoring_objects_follow_discovery(fake_kube: Any) -> None:
    fake_kube.served = frozenset({"ServiceMonitor", "PrometheusRule", "Probe"})
    rules = [{"name": "venta.platform", "rules": [{"alert": "Down", "expr": "venta_dependency_up == 0"}]}]
    rec = Reconciler(fake_kube, alert_rules=rules)
    await rec.reconcile(fake_kube.body())
    assert names(fake_kube, "ServiceMonitor") == {"demo-services"}
    assert names(fake_kube, "PrometheusRule") == {"demo-alerts"}


async def test_events_say_what_changed(fake_kube: Any, rec: Reconciler) -> None:
    body = fake_kube.body()
    events = []
    for _ in range(6):
        outcome = await rec.reconcile(body)
        events += outcome.events
        body["status"] = outcome.status
        fake_kube.settle()
    reasons = [reason for _, reason, _ in events]
    assert "Applied" in reasons and reasons[-1] == "Ready"
    assert any("ConfigMap/demo-config (missing)" in message for _, _, message in events)
    assert (await rec.reconcile(body)).events == []  # idle: no events


@pytest.mark.parametrize("delete_with_platform", [True, False])
async def test_render_prints_generated_secrets_as_the_reconciler_creates_them(
    fake_kube: Any, rec: Reconciler, delete_with_platform: bool
) -> None:
    """`venta_operator.render` (what an SRE reviews) and the reconciler stamp generated Secrets the one same way."""
    body = fake_kube.body(spec={"postgres": {"managed": {"storage": {"deleteWithPlatform": delete_with_platform}}}})
    await converge(fake_kube, rec, body)
    rendered = {m["metadata"]["name"]: m for m in render(copy.deepcopy(body), "shop") if m["kind"] == "Secret"}
    created = {name: obj for (kind, _, name), obj in fake_kube.objects.items() if kind == "Secret"}
    assert set(rendered) == set(created) and postgres_secret_name("demo") in created
    for name, secret in created.items():
        assert set(rendered[name]["data"]) == set(secret["data"]), name
        owned = "ownerReferences" in secret["metadata"]
        assert owned == ("ownerReferences" in rendered[name]["metadata"]), name
    assert ("ownerReferences" in created[postgres_secret_name("demo")]["metadata"]) == delete_with_platform


async def test_a_pass_cancelled_mid_way_leaves_no_request_behind(fake_kube: Any, rec: Reconciler) -> None:
    """Kopf cancels a platform's loop when the platform is deleted: the requests still queued behind the concurrency
    limit are dropped cleanly (no "coroutine was never awaited" at garbage collection)."""
    started = asyncio.Event()
    list_once = fake_kube.list

    async def slow_list(kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
        started.set()
        await asyncio.sleep(30)
        return await list_once(kind, namespace, selector)

    fake_kube.list = slow_list
    rec._limit = asyncio.Semaphore(1)  # one request in flight, the others queued
    task = asyncio.create_task(rec.reconcile(fake_kube.body()))
    await started.wait()
    task.cancel()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(asyncio.CancelledError):
            await task
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]
