"""StatefulSets of the managed data stores: NATS with JetStream and PostgreSQL, each with a persistent volume.

Each keeps one replica (clustered JetStream and replicated PostgreSQL are out of scope: use the external option for
production-grade HA). Whether the volume outlives the platform is the spec's choice, through the StatefulSet's PVC
retention policy, so that deleting a platform can really delete everything.
"""

from __future__ import annotations

from venta_operator.builders import Manifest
from venta_operator.builders.configmap import INIT_SCRIPT, postgres_init_name
from venta_operator.builders.pods import APP_UID, container_security, pod_spec, secret_env, with_ephemeral_storage
from venta_operator.builders.secret import (
    POSTGRES_ADMIN_PASSWORD_KEY,
    POSTGRES_PASSWORD_KEY,
    POSTGRES_USER_KEY,
    postgres_secret_name,
)
from venta_operator.components import NATS_CLIENT_PORT, NATS_MONITOR_PORT, POSTGRES_PORT
from venta_operator.naming import child_name, headless_name, labels, selector_labels
from venta_operator.spec import ManagedStore, Platform

# The postgres image's user. Its entrypoint can run as another UID through nss_wrapper, but initdb and the data
# directory's ownership are only exercised upstream with 999; the linter exception is annotated on the object.
POSTGRES_UID = 999
PGDATA = "/var/lib/postgresql/data"


def _claim(store: ManagedStore) -> Manifest:
    assert store.storage is not None
    spec: Manifest = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": store.storage.size}}}
    if store.storage.storage_class_name:
        spec["storageClassName"] = store.storage.storage_class_name
    return {"metadata": {"name": "data"}, "spec": spec}


def _statefulset(p: Platform, component: str, store: ManagedStore, pod: Manifest) -> Manifest:
    assert store.storage is not None
    when_deleted = "Delete" if store.storage.delete_with_platform else "Retain"
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": child_name(p.name, component),
            "namespace": p.namespace,
            "labels": labels(p.name, component),
        },
        "spec": {
            "replicas": 1,
            "serviceName": headless_name(p.name, component),
            "selector": {"matchLabels": selector_labels(p.name, component)},
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate"},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": when_deleted, "whenScaled": "Retain"},
            "template": {"metadata": {"labels": labels(p.name, component)}, "spec": pod},
            "volumeClaimTemplates": [_claim(store)],
        },
    }


def nats_statefulset(p: Platform) -> Manifest | None:
    store = p.spec.nats.managed
    if store is None:
        return None
    monitor = {"httpGet": {"path": "/healthz", "port": "monitor"}, "timeoutSeconds": 2}
    container = {
        "name": "nats",
        "image": store.image,
        "imagePullPolicy": "IfNotPresent",
        "args": [
            "--jetstream",
            "--store_dir",
            "/data",
            "--port",
            str(NATS_CLIENT_PORT),
            "--http_port",
            str(NATS_MONITOR_PORT),
        ],
        "ports": [
            {"name": "client", "containerPort": NATS_CLIENT_PORT, "protocol": "TCP"},
            {"name": "monitor", "containerPort": NATS_MONITOR_PORT, "protocol": "TCP"},
        ],
        "livenessProbe": {**monitor, "periodSeconds": 10},
        "readinessProbe": {
            **monitor,
            "httpGet": {"path": "/healthz?js-enabled-only=true", "port": "monitor"},
            "periodSeconds": 5,
        },
        "resources": with_ephemeral_storage(store.resources.manifest()),
        "securityContext": container_security(),
        "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    return _statefulset(p, "nats", store, pod_spec(p, [container], uid=APP_UID))


def postgres_statefulset(p: Platform) -> Manifest | None:
    store = p.spec.postgres.managed
    if store is None:
        return None
    secret = postgres_secret_name(p.name)
    ready = {"exec": {"command": ["pg_isready", "-U", "postgres", "-h", "127.0.0.1"]}, "timeoutSeconds": 5}
    alive = {"tcpSocket": {"port": "postgres"}, "timeoutSeconds": 5}  # a busy server is alive, not necessarily ready
    container = {
        "name": "postgres",
        "image": store.image,
        "imagePullPolicy": "IfNotPresent",
        "env": [
            {"name": "POSTGRES_USER", "value": "postgres"},
            secret_env("POSTGRES_PASSWORD", secret, POSTGRES_ADMIN_PASSWORD_KEY),
            # The init script creates this role and the databases from these two variables.
            secret_env("VENTA_DB_USER", secret, POSTGRES_USER_KEY),
            secret_env("VENTA_DB_PASSWORD", secret, POSTGRES_PASSWORD_KEY),
            {"name": "PGDATA", "value": f"{PGDATA}/pgdata"},  # a subdirectory: the volume root is not empty
        ],
        "ports": [{"name": "postgres", "containerPort": POSTGRES_PORT, "protocol": "TCP"}],
        "startupProbe": {**ready, "periodSeconds": 5, "failureThreshold": 60},
        "livenessProbe": {**alive, "periodSeconds": 10},
        "readinessProbe": {**ready, "periodSeconds": 5},
        "resources": with_ephemeral_storage(store.resources.manifest()),
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "data", "mountPath": PGDATA},
            {"name": "run", "mountPath": "/var/run/postgresql"},
            {"name": "shm", "mountPath": "/dev/shm"},
            {"name": "init", "mountPath": "/docker-entrypoint-initdb.d", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    volumes = [
        {"name": "run", "emptyDir": {"sizeLimit": "16Mi"}},
        {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "256Mi"}},
        {
            "name": "init",
            "configMap": {"name": postgres_init_name(p.name), "items": [{"key": INIT_SCRIPT, "path": INIT_SCRIPT}]},
        },
    ]
    pod = pod_spec(p, [container], uid=POSTGRES_UID, volumes=volumes)
    pod["terminationGracePeriodSeconds"] = 60
    sts = _statefulset(p, "postgres", store, pod)
    sts["metadata"]["annotations"] = {"kube-score/ignore": "container-security-context-user-group-id"}
    return sts


def statefulsets(p: Platform) -> list[Manifest]:
    return [s for s in (nats_statefulset(p), postgres_statefulset(p)) if s is not None]
