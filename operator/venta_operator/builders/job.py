"""Jobs: the schema migration that gates every rollout, and the one-off re-index after the platform first comes up.

A Job's pod template is immutable, so the migration Job's name carries a hash of what it runs (image and database
settings): a new version gets a new Job, while re-applying the same version finds the finished one and does not
migrate twice. The reconciler holds the service Deployments back until this Job has completed.
"""

from __future__ import annotations

from venta_operator.builders import Manifest
from venta_operator.builders.pods import identity_env, needs_env, needs_volumes, pod_spec, venta_container
from venta_operator.components import ALGOLIA, DB, GRPC, MIGRATE_COMMAND, REINDEX_COMMAND
from venta_operator.naming import child_name, digest, labels
from venta_operator.spec import Platform

JOB_RESOURCES: Manifest = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}
MIGRATE = "migrate"
REINDEX = "reindex"
SEARCH_DATABASE = "venta_search"


def job_pod(
    p: Platform, component: str, command: tuple[str, ...], env: list[Manifest], needs: frozenset[str] = frozenset()
) -> Manifest:
    container = venta_container(p, component, command, env, JOB_RESOURCES)
    volumes, mounts = needs_volumes(p, needs)
    container["volumeMounts"] += mounts
    return {
        "metadata": {"labels": labels(p.name, component, p.spec.version)},
        "spec": pod_spec(p, [container], volumes=volumes, restart_policy="Never"),
    }


def migration_pod(p: Platform) -> Manifest:
    # `venta migrate --all` walks every service database, each under its service's own name: no VENTA_DB_NAME.
    env = identity_env(MIGRATE) + needs_env(p, frozenset({DB}), None)
    return job_pod(p, MIGRATE, MIGRATE_COMMAND, env)


def migration_job_name(p: Platform) -> str:
    return child_name(p.name, f"{MIGRATE}-{digest(migration_pod(p), 8)}")


def migration_job(p: Platform) -> Manifest:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": migration_job_name(p),
            "namespace": p.namespace,
            "labels": labels(p.name, MIGRATE, p.spec.version),
        },
        "spec": {"backoffLimit": 4, "activeDeadlineSeconds": 900, "template": migration_pod(p)},
    }


def reindex_pod(p: Platform) -> Manifest:
    needs = frozenset({DB, ALGOLIA, GRPC})  # GRPC: it lists the vendors from the vendor service
    env = identity_env(REINDEX) + needs_env(p, needs, SEARCH_DATABASE)
    return job_pod(p, REINDEX, REINDEX_COMMAND, env, needs)


def initial_reindex_name(platform: str) -> str:
    return child_name(platform, f"{REINDEX}-initial")


def initial_reindex_job(p: Platform) -> Manifest:
    """Fills the search index once the services are up; later re-indexes are the CronJob's."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": initial_reindex_name(p.name),
            "namespace": p.namespace,
            "labels": labels(p.name, REINDEX, p.spec.version),
        },
        "spec": {
            "backoffLimit": 6,
            "activeDeadlineSeconds": 3600,
            "ttlSecondsAfterFinished": 86400,
            "template": reindex_pod(p),
        },
    }
