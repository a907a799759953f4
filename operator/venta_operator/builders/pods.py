"""Pieces of pod templates shared by Deployments, StatefulSets, Jobs and CronJobs.

The hardening lives here once: non-root, read-only root filesystem with an emptyDir at /tmp, all capabilities
dropped, no privilege escalation, seccomp RuntimeDefault, no service-account token, requests and limits, probes.
A workload that skips these helpers is a review finding.
"""

from __future__ import annotations

from typing import Any

from venta_operator.builders import Manifest
from venta_operator.builders.cloudnativepg import APP_PASSWORD_KEY as CNPG_PASSWORD_KEY
from venta_operator.builders.cloudnativepg import APP_USERNAME_KEY as CNPG_USERNAME_KEY
from venta_operator.builders.cloudnativepg import cnpg_app_secret_name
from venta_operator.builders.configmap import UPLOADS_DIR, config_name
from venta_operator.builders.grpc_tls import grpc_tls_env, grpc_tls_volumes
from venta_operator.builders.secret import (
    IDENTITY_ADMIN_TOKEN_KEY,
    IDENTITY_KEY_FILE,
    POSTGRES_PASSWORD_KEY,
    POSTGRES_USER_KEY,
    REDIS_PASSWORD_KEY,
    identity_admin_secret_name,
    identity_secret_name,
    postgres_secret_name,
    redis_secret_name,
)
from venta_operator.components import (
    ALGOLIA,
    CLERK,
    DB,
    EVENTS,
    GRPC,
    REDIS,
    REVENUECAT,
    SEARCH_DB,
    SIGNING_KEYS,
    UPLOADS,
    Component,
)
from venta_operator.naming import selector_labels
from venta_operator.spec import Platform, SecretKeyRef

APP_UID = 10001  # the image's user (see Dockerfile); NATS and Redis run as it too (their images need no passwd entry)
# Not in the spec: with a read-only root filesystem only logs and the small emptyDirs use node disk.
EPHEMERAL_STORAGE = {"requests": "64Mi", "limits": "1Gi"}
TMP_VOLUME = {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}
TMP_MOUNT = {"name": "tmp", "mountPath": "/tmp"}
SEARCH_DATABASE = "venta_search"
# After SIGTERM a service keeps serving, not ready, while its pod's removal from Services reaches kube-proxy, CoreDNS
# (5 s record TTL) and its peers' connection pools; then it stops within the rest of terminationGracePeriodSeconds
# (services/kit/lifecycle.py).
SHUTDOWN_DELAY_S = 5
IDENTITY_KEY_DIR = "/var/run/venta/identity-keys"


def container_security() -> Manifest:
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def pod_security(uid: int) -> Manifest:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def with_ephemeral_storage(resources: Manifest) -> Manifest:
    """Requests/limits plus ephemeral storage, so a runaway log or /tmp cannot fill a node's disk."""
    return {kind: {**values, "ephemeral-storage": EPHEMERAL_STORAGE[kind]} for kind, values in resources.items()}


def pod_spec(
    p: Platform,
    containers: list[Manifest],
    *,
    uid: int = APP_UID,
    volumes: list[Manifest] | None = None,
    restart_policy: str | None = None,
) -> Manifest:
    """The common pod spec; volumes always include /tmp's emptyDir."""
    spec: Manifest = {
        "serviceAccountName": service_account_name(p),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security(uid),
        "containers": containers,
        "volumes": [TMP_VOLUME, *(volumes or [])],
    }
    if restart_policy:
        spec["restartPolicy"] = restart_policy
    if p.spec.image.pull_secrets:
        spec["imagePullSecrets"] = [{"name": n} for n in p.spec.image.pull_secrets]
    return spec


def http_probe(path: str, port: str, *, period: int, failures: int = 3) -> Manifest:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def secret_env(name: str, secret: str, key: str) -> Manifest:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def ref_env(name: str, ref: SecretKeyRef) -> Manifest:
    return secret_env(name, ref.name, ref.key)


def database_env(p: Platform, database: str | None) -> list[Manifest]:
    """VENTA_DB_NAME/USER/PASSWORD; host and port come from the ConfigMap. Without a database (the migration, which
    visits each service's own), no VENTA_DB_NAME: it would send every service's tables into that one."""
    env: list[Manifest] = [{"name": "VENTA_DB_NAME", "value": database}] if database else []
    external = p.spec.postgres.external
    if external is not None:
        ref = external.credentials_secret_ref
        env += [
            secret_env("VENTA_DB_USER", ref.name, ref.username_key),
            secret_env("VENTA_DB_PASSWORD", ref.name, ref.password_key),
        ]
    elif p.spec.postgres.cloud_native_pg is not None:  # the application role CloudNativePG generated
        secret = cnpg_app_secret_name(p.name)
        env += [
            secret_env("VENTA_DB_USER", secret, CNPG_USERNAME_KEY),
            secret_env("VENTA_DB_PASSWORD", secret, CNPG_PASSWORD_KEY),
        ]
    else:
        secret = postgres_secret_name(p.name)
        env += [
            secret_env("VENTA_DB_USER", secret, POSTGRES_USER_KEY),
            secret_env("VENTA_DB_PASSWORD", secret, POSTGRES_PASSWORD_KEY),
        ]
    return env


def redis_env(p: Platform) -> list[Manifest]:
    external = p.spec.redis.external
    if external is None:
        return [secret_env("VENTA_REDIS_PASSWORD", redis_secret_name(p.name), REDIS_PASSWORD_KEY)]
    if external.password_secret_ref is not None:
        return [ref_env("VENTA_REDIS_PASSWORD", external.password_secret_ref)]
    return []


def needs_env(p: Platform, needs: frozenset[str], database: str | None) -> list[Manifest]:
    """The secret-backed variables of what a workload needs, only those that apply to this spec."""
    spec = p.spec
    env: list[Manifest] = []
    if DB in needs:
        env += database_env(p, database)
    elif SEARCH_DB in needs and spec.search.provider == "postgres":
        env += database_env(p, SEARCH_DATABASE)
    if REDIS in needs or (EVENTS in needs and spec.events.provider == "redis"):
        env += redis_env(p)
    algolia = spec.search.algolia
    if ALGOLIA in needs and spec.search.provider == "algolia" and algolia and algolia.api_key_secret_ref:
        env.append(ref_env("VENTA_ALGOLIA_API_KEY", algolia.api_key_secret_ref))
    clerk = spec.identity.clerk
    if CLERK in needs and spec.identity.mode == "clerk" and clerk and clerk.webhook_secret_ref:
        env.append(ref_env("VENTA_CLERK_WEBHOOK_SECRET", clerk.webhook_secret_ref))
    if REVENUECAT in needs and spec.identity.revenue_cat_webhook_secret_ref:
        env.append(ref_env("VENTA_REVENUECAT_WEBHOOK_SECRET", spec.identity.revenue_cat_webhook_secret_ref))
    if UPLOADS in needs and spec.uploads.cloudinary is not None:
        env.append(ref_env("VENTA_CLOUDINARY_URL", spec.uploads.cloudinary.url_secret_ref))
    if SIGNING_KEYS in needs:
        env += [
            {"name": "VENTA_IDENTITY_KEY_DIR", "value": IDENTITY_KEY_DIR},
            # in a cluster the issuer never mints for anyone who asks: it refuses to start without its admin token
            secret_env("VENTA_IDENTITY_ADMIN_TOKEN", identity_admin_secret_name(p.name), IDENTITY_ADMIN_TOKEN_KEY),
            {"name": "VENTA_IDENTITY_REQUIRE_ADMIN_TOKEN", "value": "true"},
        ]
    if GRPC in needs:
        env += grpc_tls_env(p)
    return env


def needs_volumes(p: Platform, needs: frozenset[str]) -> tuple[list[Manifest], list[Manifest]]:
    """(volumes, mounts) of what a workload needs: a writable uploads directory unless Cloudinary keeps images; the
    identity issuer's key from its Secret (read-only, so its tokens outlive any one pod); gRPC's certificates."""
    volumes: list[Manifest] = []
    mounts: list[Manifest] = []
    uploads = p.spec.uploads
    if UPLOADS in needs and uploads.cloudinary is None:
        source: Manifest = (
            {"persistentVolumeClaim": {"claimName": uploads.existing_claim}}
            if uploads.existing_claim
            else {"emptyDir": {"sizeLimit": "512Mi"}}
        )
        volumes.append({"name": "uploads", **source})
        mounts.append({"name": "uploads", "mountPath": UPLOADS_DIR})
    if SIGNING_KEYS in needs:
        volumes.append(
            {
                "name": "signing-keys",
                "secret": {
                    "secretName": identity_secret_name(p.name),
                    "defaultMode": 0o440,
                    "items": [{"key": IDENTITY_KEY_FILE, "path": IDENTITY_KEY_FILE}],
                },
            }
        )
        mounts.append({"name": "signing-keys", "mountPath": IDENTITY_KEY_DIR, "readOnly": True})
    if GRPC in needs:
        tls_volumes, tls_mounts = grpc_tls_volumes(p)
        volumes += tls_volumes
        mounts += tls_mounts
    return volumes, mounts


def identity_env(service: str, http_port: int | None = None, grpc_port: int | None = None) -> list[Manifest]:
    """Who the process is (logs, traces) and where it listens: on every address of the pod, for probes and peers
    (a service's own default may be loopback, as the local identity issuer's is)."""
    env: list[Manifest] = [
        {"name": "VENTA_SERVICE_NAME", "value": service},
        {"name": "OTEL_SERVICE_NAME", "value": f"venta-{service}"},
    ]
    if http_port is not None:
        env += [
            {"name": "VENTA_HOST", "value": "0.0.0.0"},
            {"name": "VENTA_HTTP_PORT", "value": str(http_port)},
            {"name": "VENTA_SHUTDOWN_DELAY_S", "value": str(SHUTDOWN_DELAY_S)},
        ]
    if grpc_port is not None:
        env.append({"name": "VENTA_GRPC_PORT", "value": str(grpc_port)})
    return env


def venta_container(
    p: Platform, name: str, command: tuple[str, ...], env: list[Manifest], resources: Manifest, **extra: Any
) -> Manifest:
    """A container of the one Venta image, reading the shared ConfigMap."""
    return {
        "name": name,
        "image": p.image,
        "imagePullPolicy": p.spec.image.pull_policy,
        "command": list(command),
        "envFrom": [{"configMapRef": {"name": config_name(p.name)}}],
        "env": env,
        "resources": with_ephemeral_storage(resources),
        "securityContext": container_security(),
        "volumeMounts": [TMP_MOUNT],
        **extra,
    }


def component_container(p: Platform, c: Component, resources: Manifest, mounts: list[Manifest]) -> Manifest:
    """A long-running service: ports, liveness on /health, readiness on /health/ready, a startup allowance."""
    env = identity_env(c.name, c.http_port, c.grpc_port) + needs_env(p, c.needs, c.database)
    container = venta_container(
        p,
        c.name,
        c.command,
        env,
        resources,
        ports=[{"name": n, "containerPort": port, "protocol": "TCP"} for n, port in c.ports.items()],
        startupProbe=http_probe("/health", "http", period=2, failures=30),
        livenessProbe=http_probe("/health", "http", period=10),
        readinessProbe=http_probe("/health/ready", "http", period=5),
    )
    container["volumeMounts"] += mounts
    return container


def anti_affinity(p: Platform, component: str) -> Manifest:
    """Prefer spreading replicas over nodes, so one node going away leaves the component up."""
    return {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": selector_labels(p.name, component)},
                    },
                }
            ]
        }
    }


def service_account_name(p: Platform) -> str:
    """Every workload runs as the platform's own ServiceAccount (no token mounted, no RBAC granted)."""
    return p.name
