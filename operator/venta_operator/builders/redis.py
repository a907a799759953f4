"""The managed Redis with persistence: a StatefulSet whose volume keeps the append-only file across pods.

Without `spec.redis.managed.persistence.enabled` Redis is a Deployment (builders/deployment.py) that keeps nothing.
With it, the same pod (same container, same sidecars, same labels, so the Service, the NetworkPolicy and every
selector stay as they are) runs in a one-replica StatefulSet with `appendonly yes` and a volume claim template at
/data, where the append-only file lives; a rescheduled pod finds the data of the one before. One replica: Redis
replication and failover are not this operator's job (an external Redis is the answer for high availability).
"""

from __future__ import annotations

from venta_operator.builders import Manifest, child_metadata
from venta_operator.builders.deployment import redis_pod
from venta_operator.naming import headless_name, labels, selector_labels
from venta_operator.spec import Platform


def redis_statefulset(p: Platform) -> Manifest | None:
    managed = p.spec.redis.managed
    pod = redis_pod(p)
    if managed is None or not managed.persistent or pod is None:
        return None
    persistence = managed.persistence
    claim: Manifest = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": persistence.size}},
    }
    if persistence.storage_class_name:
        claim["storageClassName"] = persistence.storage_class_name
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": child_metadata(p, "redis"),
        "spec": {
            "replicas": 1,
            "serviceName": headless_name(p.name, "redis"),
            "selector": {"matchLabels": selector_labels(p.name, "redis")},
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate"},
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": "Delete" if persistence.delete_with_platform else "Retain",
                "whenScaled": "Retain",
            },
            "template": {"metadata": {"labels": labels(p.name, "redis")}, "spec": pod},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": claim}],
        },
    }


def redis_statefulsets(p: Platform) -> list[Manifest]:
    sts = redis_statefulset(p)
    return [sts] if sts is not None else []
