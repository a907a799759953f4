"""StatefulSets of the managed data stores: NATS with JetStream and PostgreSQL, each with a persistent volume.

NATS runs one server, or three as a JetStream cluster (`spec.nats.managed.replicas`): every server routes to every
peer through the headless Service's per-pod DNS names (which it publishes before the pods are ready, or the first
servers could never find each other), names itself after its pod (JetStream clustering needs a stable, unique server
name), and the pods start together (`Parallel`): the JetStream meta group elects a leader only once a majority is
up, so waiting for pod 0 to be ready before starting pod 1 could wait forever. A one-server NATS gets none of this,
exactly as before. PostgreSQL keeps one replica (replicated PostgreSQL is delegated, or external). Whether the
volume outlives the platform is the spec's choice, through the StatefulSet's PVC retention policy, so that deleting
a platform can really delete everything.
"""

from __future__ import annotations

from venta_operator.builders import Manifest, child_metadata
from venta_operator.builders.configmap import INIT_SCRIPT, postgres_init_name
from venta_operator.builders.exporters import nats_sidecars, postgres_sidecars
from venta_operator.builders.pods import (
    APP_UID,
    anti_affinity,
    container_security,
    pod_spec,
    secret_env,
    with_ephemeral_storage,
)
from venta_operator.builders.redis import redis_statefulset
from venta_operator.builders.secret import (
    POSTGRES_ADMIN_PASSWORD_KEY,
    POSTGRES_PASSWORD_KEY,
    POSTGRES_USER_KEY,
    postgres_secret_name,
)
from venta_operator.components import NATS_CLIENT_PORT, NATS_CLUSTER_PORT, NATS_MONITOR_PORT, POSTGRES_PORT
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


def _statefulset(p: Platform, component: str, store: ManagedStore, pod: Manifest, replicas: int = 1) -> Manifest:
    assert store.storage is not None
    when_deleted = "Delete" if store.storage.delete_with_platform else "Retain"
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": child_metadata(p, component),
        "spec": {
            "replicas": replicas,
            "serviceName": headless_name(p.name, component),
            "selector": {"matchLabels": selector_labels(p.name, component)},
            "podManagementPolicy": "Parallel" if replicas > 1 else "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate"},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": when_deleted, "whenScaled": "Retain"},
            "template": {"metadata": {"labels": labels(p.name, component)}, "spec": pod},
            "volumeClaimTemplates": [_claim(store)],
        },
    }


def nats_cluster_name(platform: str) -> str:
    return child_name(platform, "nats")


def nats_routes(p: Platform, replicas: int) -> list[str]:
    """Every server of the cluster, itself included (a server recognises and skips its own route)."""
    headless = headless_name(p.name, "nats")
    return [
        f"nats://{child_name(p.name, 'nats')}-{i}.{headless}.{p.namespace}.svc:{NATS_CLUSTER_PORT}"
        for i in range(replicas)
    ]


def nats_statefulset(p: Platform) -> Manifest | None:
    store = p.spec.nats.managed
    if store is None:
        return None
    monitor: Manifest = {"httpGet": {"path": "/healthz", "port": "monitor"}, "timeoutSeconds": 2}
    args = [
        "--jetstream",
        "--store_dir",
        "/data",
        "--port",
        str(NATS_CLIENT_PORT),
        "--http_port",
        str(NATS_MONITOR_PORT),
    ]
    ports = [
        {"name": "client", "containerPort": NATS_CLIENT_PORT, "protocol": "TCP"},
        {"name": "monitor", "containerPort": NATS_MONITOR_PORT, "protocol": "TCP"},
    ]
    env: list[Manifest] = []
    if store.clustered:
        args += [
            "--server_name",
            "$(POD_NAME)",  # the kubelet expands it from the env below: venta-nats-0, -1, -2
            "--cluster_name",
            nats_cluster_name(p.name),
            "--cluster",
            f"nats://0.0.0.0:{NATS_CLUSTER_PORT}",
            "--routes",
            ",".join(nats_routes(p, store.replicas)),
        ]
        ports.append({"name": "cluster", "containerPort": NATS_CLUSTER_PORT, "protocol": "TCP"})
        env.append({"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}})
    container: Manifest = {
        "name": "nats",
        "image": store.image,
        "imagePullPolicy": "IfNotPresent",
        **({"env": env} if env else {}),
        "args": args,
        "ports": ports,
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
    if store.clustered:
        # A cluster member is alive while it waits for its peers, so liveness asks only that the server answers
        # (JetStream's state is the peers' business); the full /healthz (meta group joined, every stream copy
        # caught up) gates its start instead, which is also what makes a rolling update wait for one server to
        # catch up before it stops the next. Readiness stays "JetStream is on", as with one server.
        server: Manifest = {**monitor, "httpGet": {"path": "/healthz?js-server-only=true", "port": "monitor"}}
        container["startupProbe"] = {**monitor, "periodSeconds": 5, "failureThreshold": 120}
        container["livenessProbe"] = {**server, "periodSeconds": 10}
    pod = pod_spec(p, [container, *nats_sidecars(p)], uid=APP_UID)
    if store.clustered:
        pod["affinity"] = anti_affinity(p, "nats")  # one node lost takes one server, not the majority
    return _statefulset(p, "nats", store, pod, replicas=store.replicas)


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
    pod = pod_spec(p, [container, *postgres_sidecars(p)], uid=POSTGRES_UID, volumes=volumes)
    pod["terminationGracePeriodSeconds"] = 60
    sts = _statefulset(p, "postgres", store, pod)
    sts["metadata"]["annotations"] = {"kube-score/ignore": "container-security-context-user-group-id"}
    return sts


def statefulsets(p: Platform) -> list[Manifest]:
    """NATS and PostgreSQL when managed, and Redis when managed with persistence (builders/redis.py)."""
    return [s for s in (nats_statefulset(p), postgres_statefulset(p), redis_statefulset(p)) if s is not None]
