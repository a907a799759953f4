"""The platform's status, computed from the live children: conditions, replicas, endpoints, version, re-index.

Pure. Conditions keep their `lastTransitionTime` when their status did not change, and `status_patch()` returns
only what differs from the current status, so a reconcile that changed nothing writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from venta_operator import readiness
from venta_operator.builders import Key
from venta_operator.builders.cloudnativepg import CNPG_API, CNPG_CLUSTER, CNPG_CRD, cnpg_cluster_name
from venta_operator.builders.cronjob import reindex_cronjob_name
from venta_operator.builders.job import initial_reindex_name, migration_job_name
from venta_operator.components import APP_COMPONENTS, IDENTITY, Component
from venta_operator.endpoints import status_endpoints
from venta_operator.naming import LABEL_VERSION, child_name, selector_labels
from venta_operator.spec import Platform

Obj = dict[str, Any]


@dataclass
class Observation:
    """What one reconcile pass saw and did, as input to the status."""

    live: dict[Key, Obj]
    generation: int
    now: str  # RFC 3339, passed in so the function stays pure
    paused: bool = False
    stage: str = "foundation"
    problems: list[str] = field(default_factory=list)  # e.g. a referenced Secret that does not exist
    previous: Obj = field(default_factory=dict)  # the current status
    available_kinds: frozenset[str] = frozenset()  # optional kinds the cluster serves (CloudNativePG's Cluster)


def _components(p: Platform) -> list[Component]:
    return [*APP_COMPONENTS, *([IDENTITY] if p.spec.identity.mode == "local" else [])]


def store_readiness(
    p: Platform, store: str, live: dict[Key, Obj], available_kinds: frozenset[str] = frozenset()
) -> readiness.Readiness:
    """One data store: external (nothing to watch), a CloudNativePG Cluster, or the workload the operator runs."""
    name = child_name(p.name, store)
    if getattr(p.spec, store).external is not None:
        return readiness.Readiness(True, "External", f"external {store}, not managed here")
    if store == "postgres" and p.spec.postgres.cloud_native_pg is not None:
        if CNPG_CLUSTER not in available_kinds:
            return readiness.Readiness(
                False,
                "CloudNativePGMissing",
                f"spec.postgres.cloudNativePG needs CloudNativePG: the cluster does not serve {CNPG_API} "
                f"{CNPG_CLUSTER} (CustomResourceDefinition {CNPG_CRD}); install CloudNativePG or choose "
                "postgres.managed or postgres.external",
                failed=True,
            )
        cluster = cnpg_cluster_name(p.name)
        return readiness.cnpg_cluster(live.get((CNPG_CLUSTER, cluster)), cluster)
    managed = p.spec.redis.managed
    if store == "redis" and not (managed is not None and managed.persistent):
        return readiness.deployment(live.get(("Deployment", name)), name)
    return readiness.statefulset(live.get(("StatefulSet", name)), name)


def component_readiness(
    p: Platform, live: dict[Key, Obj], available_kinds: frozenset[str] = frozenset()
) -> dict[str, tuple[str, readiness.Readiness]]:
    """key -> (condition type, readiness) for every service and data store of the spec."""
    out: dict[str, tuple[str, readiness.Readiness]] = {}
    for c in _components(p):
        name = child_name(p.name, c.name)
        out[c.key] = (c.condition, readiness.deployment(live.get(("Deployment", name)), name))
    for store in ("nats", "postgres", "redis"):
        out[store] = (store.capitalize() + "Ready", store_readiness(p, store, live, available_kinds))
    return out


def services_ready(p: Platform, live: dict[Key, Obj]) -> bool:
    states = component_readiness(p, live)
    return all(states[c.key][1].ready for c in _components(p))


def _condition(kind: str, ok: bool, reason: str, message: str, obs: Observation) -> Obj:
    return {
        "type": kind,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message[:1024],
        "observedGeneration": obs.generation,
        "lastTransitionTime": obs.now,
    }


def _keep_transition_times(new: list[Obj], old: list[Obj]) -> list[Obj]:
    before = {c.get("type"): c for c in old}
    for cond in new:
        prev = before.get(cond["type"])
        if prev and prev.get("status") == cond["status"] and prev.get("lastTransitionTime"):
            cond["lastTransitionTime"] = prev["lastTransitionTime"]
    return new


def _last_reindex(p: Platform, live: dict[Key, Obj], previous: Obj) -> Obj | None:
    best = previous.get("lastReindex")
    candidates = []
    initial = initial_reindex_name(p.name)
    if (t := readiness.completion_time(live.get(("Job", initial)))) is not None:
        candidates.append({"job": initial, "completionTime": t})
    cron = live.get(("CronJob", reindex_cronjob_name(p.name)))
    if cron and (t := (cron.get("status") or {}).get("lastSuccessfulTime")):
        candidates.append({"job": reindex_cronjob_name(p.name), "completionTime": str(t)})
    for c in candidates:
        if best is None or c["completionTime"] > best.get("completionTime", ""):
            best = c
    if best is None and not p.spec.search.reindex_on_create:
        return None
    return best


def _running_version(p: Platform, live: dict[Key, Obj], all_ready: bool, previous: Obj) -> str | None:
    """The version every service runs: the spec's once rolled out, else the one before (still serving)."""
    versions = set()
    for c in _components(p):
        dep = live.get(("Deployment", child_name(p.name, c.name)))
        tmpl = ((dep or {}).get("spec") or {}).get("template", {})
        versions.add((tmpl.get("metadata", {}).get("labels") or {}).get(LABEL_VERSION))
    if all_ready and versions == {p.spec.version}:
        return p.spec.version
    prev = previous.get("version")
    return str(prev) if prev else None


def compute(p: Platform, obs: Observation) -> Obj:
    states = component_readiness(p, obs.live, obs.available_kinds)
    job_name = migration_job_name(p)
    migration = readiness.job(obs.live.get(("Job", job_name)), job_name)
    conditions = [_condition(cond, r.ready, r.reason, r.message, obs) for cond, r in states.values()]
    conditions.append(_condition("Migrated", migration.ready, migration.reason, migration.message, obs))

    not_ready = sorted(key for key, (_, r) in states.items() if not r.ready)
    failures = [r.message for _, r in states.values() if r.failed]
    failures += [migration.message] if migration.failed else []
    failures += obs.problems
    all_ready = not not_ready and migration.ready

    if all_ready and not failures:
        ready = _condition("Ready", True, "AllComponentsReady", "every component is ready", obs)
    elif failures:
        ready = _condition("Ready", False, "Degraded", "; ".join(failures), obs)
    elif not migration.ready:
        ready = _condition("Ready", False, "WaitingForMigration", migration.message, obs)
    else:
        ready = _condition("Ready", False, "ComponentsNotReady", "not ready: " + ", ".join(not_ready), obs)
    if obs.paused:
        progressing = _condition(
            "Progressing", False, "ReconciliationPaused", "reconciliation is paused; children are not changed", obs
        )
    elif all_ready:
        progressing = _condition("Progressing", False, "Complete", f"version {p.spec.version} rolled out", obs)
    else:
        progressing = _condition(
            "Progressing", True, f"Stage{obs.stage.capitalize()}", f"converging (stage {obs.stage})", obs
        )
    degraded = _condition(
        "Degraded", bool(failures), "Failing" if failures else "AsExpected", "; ".join(failures) or "no failures", obs
    )
    conditions = [ready, progressing, degraded, *conditions]

    # While paused the spec is not acted on, so the status does not claim to describe a newer generation.
    generation = obs.previous.get("observedGeneration", obs.generation) if obs.paused else obs.generation
    status: Obj = {
        "observedGeneration": generation,
        "paused": obs.paused,
        "conditions": _keep_transition_times(conditions, obs.previous.get("conditions") or []),
        "components": {key: r.replicas.as_status() for key, (_, r) in states.items() if r.replicas},
        "endpoints": status_endpoints(p),
        "gatewaySelector": ",".join(f"{k}={v}" for k, v in selector_labels(p.name, "gateway").items()),
        "migration": {
            "job": job_name,
            "version": p.spec.version,
            "state": "Succeeded" if migration.ready else migration.reason,
        },
    }
    if (version := _running_version(p, obs.live, all_ready, obs.previous)) is not None:
        status["version"] = version
    if (last := _last_reindex(p, obs.live, obs.previous)) is not None:
        status["lastReindex"] = last
    return status


def status_patch(new: Obj, current: Obj) -> Obj:
    """A JSON merge patch from the current to the new status: only what differs, None for what must go.

    Maps (components, endpoints) are merged key by key by the API server, so keys that disappeared (the identity
    component after switching to Clerk) are removed explicitly.
    """
    patch: Obj = {}
    for key, value in new.items():
        old = current.get(key)
        if old == value:
            continue
        if isinstance(value, dict) and isinstance(old, dict):
            value = {**value, **{k: None for k in old if k not in value}}
        patch[key] = value
    patch.update({k: None for k in current if k not in new and k in _OWNED})
    return patch


_OWNED = frozenset(
    {
        "observedGeneration",
        "paused",
        "conditions",
        "components",
        "endpoints",
        "gatewaySelector",
        "migration",
        "version",
        "lastReindex",
    }
)


def failure_status(previous: Obj, generation: int, now: str, reason: str, message: str) -> Obj:
    """The status when a pass could not even compute the desired state (bad spec, API server refusing)."""
    obs = Observation(live={}, generation=generation, now=now, previous=previous)
    failed = [_condition("Ready", False, reason, message, obs), _condition("Degraded", True, reason, message, obs)]
    others = [c for c in previous.get("conditions") or [] if c.get("type") not in ("Ready", "Degraded")]
    return {
        "observedGeneration": generation,
        "conditions": _keep_transition_times(failed, previous.get("conditions") or []) + others,
    }
