"""ConfigMaps: the services' settings (every non-secret VENTA_* variable) and the PostgreSQL init script.

The settings ConfigMap is read by every workload through `envFrom`; its checksum goes on the pod templates, so a
setting change rolls the pods (environment variables are read once, at start). Secrets never go here.
"""

from __future__ import annotations

from collections.abc import Mapping

from venta_operator.builders import Manifest
from venta_operator.components import DATABASES, GATEWAY, LOCATION, NOTIFICATIONS, USERS, VENDORS
from venta_operator.endpoints import (
    http_url,
    identity_issuer,
    identity_jwks_url,
    nats_url,
    peer_addr,
    postgres_host_port,
    redis_url,
)
from venta_operator.naming import child_name, digest, labels
from venta_operator.spec import Platform

INIT_SCRIPT = "10-venta-databases.sh"
UPLOADS_DIR = "/var/lib/venta/uploads"  # the gateway's writable directory for uploads (see builders/pods.py)
MIN_SHUTDOWN_GRACE_S = 10.0


def config_name(platform: str) -> str:
    return child_name(platform, "config")


def postgres_init_name(platform: str) -> str:
    return child_name(platform, "postgres-init")


def _number(value: float) -> str:
    """30.0 -> "30", 0.5 -> "0.5": stable text for float settings."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def shutdown_grace_s(p: Platform) -> float:
    """Seconds a stopping service gives the calls it has started: longer than any peer call's deadline, so a call a
    server started is never cut short while its caller still waits. The kit's clients retry a call a server
    cancelled, which is then always one it never started (services/kit/grpc/client.py)."""
    return max(MIN_SHUTDOWN_GRACE_S, p.spec.resilience.grpc_timeout_seconds + 1)


def settings(p: Platform) -> dict[str, str]:
    """Every non-secret setting, named as the services read them (pydantic-settings, prefix VENTA_)."""
    spec = p.spec
    db_host, db_port = postgres_host_port(p)
    data = {
        "VENTA_DB_HOST": db_host,
        "VENTA_DB_PORT": str(db_port),
        "VENTA_EVENTS_PROVIDER": spec.events.provider,  # its broker's URL is the one above or below
        "VENTA_NATS_URL": nats_url(p),
        "VENTA_EVENTS_STREAM_REPLICAS": str(spec.nats.stream_replicas),  # one copy per managed NATS server
        "VENTA_REDIS_URL": redis_url(p),
        "VENTA_USERS_ADDR": peer_addr(p, USERS),
        "VENTA_VENDORS_ADDR": peer_addr(p, VENDORS),
        "VENTA_LOCATION_ADDR": peer_addr(p, LOCATION),
        "VENTA_NOTIFICATIONS_URL": http_url(p, NOTIFICATIONS),
        "VENTA_LOG_LEVEL": spec.observability.log_level,
        "VENTA_SEARCH_PROVIDER": spec.search.provider,
        "VENTA_SEARCH_INDEX": spec.search.index,
        "VENTA_BREAKER_FAIL_MAX": str(spec.resilience.breaker_fail_max),
        "VENTA_BREAKER_RESET_TIMEOUT_S": _number(spec.resilience.breaker_reset_timeout_seconds),
        "VENTA_GRPC_TIMEOUT_S": _number(spec.resilience.grpc_timeout_seconds),
        "VENTA_SHUTDOWN_GRACE_S": _number(shutdown_grace_s(p)),
        "VENTA_RATE_LIMIT": spec.resilience.rate_limit,
    }
    uploads = spec.uploads
    data["VENTA_PUBLIC_URL"] = uploads.public_base_url or http_url(p, GATEWAY)
    if uploads.cloudinary is not None:
        data["VENTA_CLOUDINARY_FOLDER"] = uploads.cloudinary.folder
    else:
        data["VENTA_UPLOAD_DIR"] = UPLOADS_DIR
    if spec.network.trusted_proxies:
        data["VENTA_FORWARDED_ALLOW_IPS"] = ",".join(spec.network.trusted_proxies)
    if spec.search.provider == "algolia" and spec.search.algolia and spec.search.algolia.app_id:
        data["VENTA_ALGOLIA_APP_ID"] = spec.search.algolia.app_id
    clerk = spec.identity.clerk
    # The edges (gateway, websocket) read VENTA_AUTH_*: one verification path for Clerk and the local issuer.
    if spec.identity.mode == "clerk" and clerk is not None:
        data["VENTA_AUTH_JWKS_URL"] = clerk.jwks_url or ""
        data["VENTA_AUTH_ISSUER"] = clerk.issuer or ""
        data["VENTA_AUTH_AUTHORIZED_PARTIES"] = ",".join(clerk.authorized_parties)
    else:  # local mode: the platform's own issuer, verified through the same JWKS code path
        data["VENTA_AUTH_JWKS_URL"] = identity_jwks_url(p)
        data["VENTA_AUTH_ISSUER"] = identity_issuer(p)
        data["VENTA_IDENTITY_ISSUER"] = identity_issuer(p)  # what the identity component writes into `iss`
    tracing = spec.observability.tracing
    if tracing.endpoint:
        data["OTEL_EXPORTER_OTLP_ENDPOINT"] = tracing.endpoint
        data["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
        data["OTEL_TRACES_SAMPLER_ARG"] = _number(tracing.sampling_ratio)
    else:
        data["OTEL_SDK_DISABLED"] = "true"
    return data


def config_checksum(p: Platform) -> str:
    """Goes on pod templates: a different checksum is a different template, hence a rolling update."""
    return digest(settings(p))


def settings_configmap(p: Platform) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": config_name(p.name), "namespace": p.namespace, "labels": labels(p.name, "config")},
        "data": settings(p),
    }


def init_script() -> str:
    """Creates the application role and one database per service on first start (empty data directory only).

    Names and password come from the environment through psql variables (`:"x"`, `:'x'`), never spliced into SQL.
    """
    creates = "\n".join(f'CREATE DATABASE {db} OWNER :"app_user";' for db in DATABASES)
    return (
        "# Sourced by the postgres image's entrypoint when it initialises an empty data directory.\n"
        'psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \\\n'
        '  -v app_user="$VENTA_DB_USER" -v app_password="$VENTA_DB_PASSWORD" <<\'SQL\'\n'
        "CREATE ROLE :\"app_user\" LOGIN PASSWORD :'app_password';\n"
        f"{creates}\n"
        "SQL\n"
    )


def postgres_init_configmap(p: Platform) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": postgres_init_name(p.name),
            "namespace": p.namespace,
            "labels": labels(p.name, "postgres"),
        },
        "data": {INIT_SCRIPT: init_script()},
    }


def dashboards_configmap(p: Platform, dashboards: Mapping[str, str]) -> Manifest:
    """Grafana dashboards (file name -> JSON) for the Grafana sidecar, which loads ConfigMaps with this label."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": child_name(p.name, "dashboards"),
            "namespace": p.namespace,
            "labels": {**labels(p.name, "dashboards"), "grafana_dashboard": "1"},
        },
        "data": dict(sorted(dashboards.items())),
    }


def configmaps(p: Platform, dashboards: Mapping[str, str] | None = None) -> list[Manifest]:
    out = [settings_configmap(p)]
    if p.spec.postgres.managed is not None:
        out.append(postgres_init_configmap(p))
    if dashboards and p.spec.observability.dashboards.enabled:
        out.append(dashboards_configmap(p, dashboards))
    return out
