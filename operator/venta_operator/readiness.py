"""Reading a child's own status: is this Deployment rolled out, this StatefulSet ready, this Job finished?

Pure functions of one live object, shared by the plan's facts and by the platform status. "Ready" always requires
the controller to have seen the latest spec (`observedGeneration`), or a just-applied change would look done.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class Replicas:
    desired: int
    current: int
    ready: int
    updated: int

    def as_status(self) -> dict[str, int]:
        return {
            "desiredReplicas": self.desired,
            "replicas": self.current,
            "readyReplicas": self.ready,
            "updatedReplicas": self.updated,
        }


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str
    message: str
    replicas: Replicas | None = None
    failed: bool = False


def _observed(obj: Obj) -> bool:
    status = obj.get("status") or {}
    return int(status.get("observedGeneration", 0)) >= int(obj["metadata"].get("generation", 1))


def _replicas(obj: Obj) -> Replicas:
    status = obj.get("status") or {}
    return Replicas(
        desired=int((obj.get("spec") or {}).get("replicas", 1)),
        current=int(status.get("replicas", 0)),
        ready=int(status.get("readyReplicas", 0)),
        updated=int(status.get("updatedReplicas", 0)),
    )


def _condition(obj: Obj, kind: str) -> Obj | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def missing(name: str) -> Readiness:
    return Readiness(False, "NotCreated", f"{name} does not exist yet")


def deployment(obj: Obj | None, name: str) -> Readiness:
    """Rolled out: every replica updated, available and ready (the `kubectl rollout status` rule)."""
    if obj is None:
        return missing(f"Deployment {name}")
    r = _replicas(obj)
    progressing = _condition(obj, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Readiness(False, "ProgressDeadlineExceeded", progressing.get("message", ""), r, failed=True)
    if not _observed(obj):
        return Readiness(False, "RollingOut", f"Deployment {name}: change not yet observed", r)
    available = int((obj.get("status") or {}).get("availableReplicas", 0))
    if r.updated < r.desired or r.current > r.updated or available < r.desired or r.ready < r.desired:
        return Readiness(False, "RollingOut", f"Deployment {name}: {r.ready}/{r.desired} ready, {r.updated} updated", r)
    return Readiness(True, "Available", f"{r.ready}/{r.desired} replicas ready", r)


def statefulset(obj: Obj | None, name: str) -> Readiness:
    if obj is None:
        return missing(f"StatefulSet {name}")
    r = _replicas(obj)
    if not _observed(obj):
        return Readiness(False, "RollingOut", f"StatefulSet {name}: change not yet observed", r)
    status = obj.get("status") or {}
    same_revision = status.get("updateRevision") in (None, status.get("currentRevision"))
    if r.ready < r.desired or r.updated < r.desired or not same_revision:
        return Readiness(False, "RollingOut", f"StatefulSet {name}: {r.ready}/{r.desired} ready", r)
    return Readiness(True, "Available", f"{r.ready}/{r.desired} replicas ready", r)


def job(obj: Obj | None, name: str) -> Readiness:
    """A Job is "ready" once it has succeeded; `failed` once it gave up (backoff limit or deadline)."""
    if obj is None:
        return missing(f"Job {name}")
    status = obj.get("status") or {}
    complete = _condition(obj, "Complete")
    if (complete and complete.get("status") == "True") or int(status.get("succeeded", 0)) > 0:
        return Readiness(True, "Completed", f"Job {name} completed")
    failed = _condition(obj, "Failed")
    if failed and failed.get("status") == "True":
        return Readiness(
            False, "Failed", f"Job {name} failed: {failed.get('message', failed.get('reason', ''))}", failed=True
        )
    return Readiness(False, "Running", f"Job {name} is running")


def completion_time(obj: Obj | None) -> str | None:
    if obj is None:
        return None
    value = (obj.get("status") or {}).get("completionTime")
    return str(value) if value else None


def cnpg_cluster(obj: Obj | None, name: str) -> Readiness:
    """A CloudNativePG `Cluster`: ready when CloudNativePG says so (its Ready condition, for the current generation)
    and every instance is ready; its phase says what it is doing meanwhile (e.g. "Setting up primary")."""
    if obj is None:
        return missing(f"Cluster {name}")
    status = obj.get("status") or {}
    want = int((obj.get("spec") or {}).get("instances", 1))
    ready_instances = int(status.get("readyInstances", 0))
    r = Replicas(desired=want, current=int(status.get("instances", 0)), ready=ready_instances, updated=ready_instances)
    phase = str(status.get("phase") or "no phase reported yet")
    cond = _condition(obj, "Ready")
    current = cond is not None and int(cond.get("observedGeneration", 0) or 0) in (
        0,  # a condition without observedGeneration cannot be stale by that measure
        int(obj["metadata"].get("generation", 1)),
    )
    if cond and cond.get("status") == "True" and current and ready_instances >= want:
        return Readiness(True, "ClusterReady", f"{ready_instances}/{want} instances ready ({phase})", r)
    return Readiness(False, "ClusterNotReady", f"Cluster {name}: {phase}, {ready_instances}/{want} instances ready", r)
