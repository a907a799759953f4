"""Deployments: one per service (same image, different command), the local identity issuer, and managed Redis.

Service Deployments carry the settings checksum on their pod template (a setting change rolls them) and omit
`replicas` when autoscaling is on, so that the HorizontalPodAutoscaler, not the operator, owns the count.
"""

from __future__ import annotations

import math

from venta_operator.builders import Manifest, child_metadata
from venta_operator.builders.configmap import config_checksum, shutdown_grace_s
from venta_operator.builders.development import with_live_reload
from venta_operator.builders.exporters import redis_sidecars
from venta_operator.builders.pods import (
    APP_UID,
    SHUTDOWN_DELAY_S,
    anti_affinity,
    component_container,
    container_security,
    needs_volumes,
    pod_spec,
    secret_env,
    with_ephemeral_storage,
)
from venta_operator.builders.secret import REDIS_PASSWORD_KEY, redis_secret_name
from venta_operator.components import APP_COMPONENTS, IDENTITY, REDIS_PORT, Component
from venta_operator.naming import ANNOTATION_CONFIG_CHECKSUM, labels, selector_labels
from venta_operator.spec import Platform, ResourceList, Resources, ServiceSpec
from venta_operator.spec_schema import APP_RESOURCES

DEFAULT_RESOURCES = Resources(
    requests=ResourceList(cpu=APP_RESOURCES[0], memory=APP_RESOURCES[1]),
    limits=ResourceList(cpu=APP_RESOURCES[2], memory=APP_RESOURCES[3]),
)


def termination_grace_s(p: Platform) -> int:
    """The pod's whole stop: the drain delay, the service's grace for calls in flight, and 5 s to close the rest."""
    return max(30, math.ceil(SHUTDOWN_DELAY_S + shutdown_grace_s(p) + 5))


def _deployment(
    p: Platform,
    component: str,
    replicas: int | None,
    pod: Manifest,
    annotations: dict[str, str] | None = None,
    strategy: Manifest | None = None,
) -> Manifest:
    spec: Manifest = {
        "revisionHistoryLimit": 5,
        "selector": {"matchLabels": selector_labels(p.name, component)},
        "strategy": strategy or {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "template": {
            "metadata": {"labels": labels(p.name, component, p.spec.version), "annotations": annotations or {}},
            "spec": pod,
        },
    }
    if replicas is not None:
        spec = {"replicas": replicas, **spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": child_metadata(p, component, version=p.spec.version),
        "spec": spec,
    }


def service_spec(p: Platform, c: Component) -> ServiceSpec | None:
    return p.spec.services.get(c.key)


def component_deployment(p: Platform, c: Component) -> Manifest:
    svc = service_spec(p, c)
    resources = svc.resources if svc else DEFAULT_RESOURCES
    replicas: int | None = svc.replicas if svc else 1
    if svc and svc.autoscaling.enabled:
        replicas = None
    volumes, mounts = needs_volumes(p, c.needs)
    pod = pod_spec(p, [component_container(p, c, resources.manifest(), mounts)], volumes=volumes)
    pod["affinity"] = anti_affinity(p, c.name)
    pod["terminationGracePeriodSeconds"] = termination_grace_s(p)
    if p.spec.development.live_reload:
        pod = with_live_reload(pod)
    return _deployment(p, c.name, replicas, pod, {ANNOTATION_CONFIG_CHECKSUM: config_checksum(p)})


def _appendonly(p: Platform) -> list[str]:
    managed = p.spec.redis.managed
    if p.spec.events.provider == "redis" or (managed is not None and managed.persistent):
        return ["--appendonly", "yes", "--appendfsync", "everysec"]
    return ["--appendonly", "no"]


def redis_pod(p: Platform) -> Manifest | None:
    """The managed Redis's pod: in a Deployment, or with persistence in a StatefulSet (builders/redis.py), whose
    volume claim template then provides the `data` volume the append-only file is written to."""
    managed = p.spec.redis.managed
    if managed is None:
        return None
    container = {
        "name": "redis",
        "image": managed.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["redis-server"],
        # A cache: nothing is persisted, unless the events are in it (an append-only file, kept while the pod is) or
        # persistence is on (the file on a volume); the password comes from the generated Secret via the environment.
        "args": ["--requirepass", "$(REDIS_PASSWORD)", "--save", "", *_appendonly(p), "--dir", "/data"],
        "env": [secret_env("REDIS_PASSWORD", redis_secret_name(p.name), REDIS_PASSWORD_KEY)],
        "ports": [{"name": "redis", "containerPort": REDIS_PORT, "protocol": "TCP"}],
        "livenessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 10, "timeoutSeconds": 2},
        # Ready means answering commands, not just listening; the password stays in the environment.
        "readinessProbe": {
            "exec": {"command": ["sh", "-c", 'redis-cli -a "$REDIS_PASSWORD" --no-auth-warning ping']},
            "periodSeconds": 5,
            "timeoutSeconds": 2,
        },
        "resources": with_ephemeral_storage(managed.resources.manifest()),
        "securityContext": container_security(),
        "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    # The redis image's own user is 999; redis-server runs as any user, and a UID above 10000 never collides with
    # a host account.
    scratch = [] if managed.persistent else [{"name": "data", "emptyDir": {"sizeLimit": "1Gi"}}]
    return pod_spec(p, [container, *redis_sidecars(p)], uid=APP_UID, volumes=scratch)


def redis_deployment(p: Platform) -> Manifest | None:
    managed = p.spec.redis.managed
    pod = redis_pod(p)
    if managed is None or managed.persistent or pod is None:
        return None
    return _deployment(p, "redis", 1, pod, strategy={"type": "Recreate"})


def service_deployments(p: Platform) -> list[Manifest]:
    """The services' Deployments, applied only after the migration has completed."""
    out = [component_deployment(p, c) for c in APP_COMPONENTS]
    if p.spec.identity.mode == "local":
        out.append(component_deployment(p, IDENTITY))
    return out


def infra_deployments(p: Platform) -> list[Manifest]:
    redis = redis_deployment(p)
    return [redis] if redis else []
