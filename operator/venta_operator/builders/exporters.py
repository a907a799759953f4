"""Prometheus exporters of the data stores (`spec.observability.exporters`), so that PostgreSQL, NATS and Redis are
watched like the services: a sidecar in each managed store's pod, reading it over localhost, and a small Deployment
with its own Service for an external PostgreSQL or Redis (and an external NATS whose monitoring URL is given), and
for a CloudNativePG cluster's primary.

Every exporter serves the port named `metrics`, which the stores' ServiceMonitor scrapes (`builders/monitoring.py`);
the services' ServiceMonitor scrapes the port named `http`, so neither picks up the other's targets. The metric names
the stores' dashboard and alerts read are those of the pinned images (observability/dashboards/venta-stores.json,
observability/rules/venta-stores.yaml).

Pure, like every builder. It must never hold a credential: passwords reach the exporters through secretKeyRefs.
"""

from __future__ import annotations

from venta_operator.builders import Manifest, child_metadata
from venta_operator.builders.cloudnativepg import (
    APP_PASSWORD_KEY,
    APP_USERNAME_KEY,
    cnpg_app_secret_name,
    cnpg_rw_service_name,
)
from venta_operator.builders.pods import container_security, pod_spec, ref_env, secret_env, with_ephemeral_storage
from venta_operator.builders.secret import (
    POSTGRES_ADMIN_PASSWORD_KEY,
    REDIS_PASSWORD_KEY,
    postgres_secret_name,
    redis_secret_name,
)
from venta_operator.components import NATS_MONITOR_PORT, POSTGRES_PORT, REDIS_PORT
from venta_operator.naming import labels, selector_labels
from venta_operator.spec import Exporter, Platform

METRICS_PORT_NAME = "metrics"
# The exporters' own default ports (what their documentation and dashboards assume).
POSTGRES_EXPORTER_PORT = 9187
NATS_EXPORTER_PORT = 7777
REDIS_EXPORTER_PORT = 9121
EXPORTER_PORTS = {"postgres": POSTGRES_EXPORTER_PORT, "nats": NATS_EXPORTER_PORT, "redis": REDIS_EXPORTER_PORT}
LISTENING = {"tcpSocket": {"port": METRICS_PORT_NAME}}
# varz: connections, routes, memory; connz/routez: per connection and route; jsz=all: streams and consumers.
NATS_EXPORTER_ARGS = ("-varz", "-connz", "-routez", "-jsz=all", "-port", str(NATS_EXPORTER_PORT))


def enabled(p: Platform) -> bool:
    return p.spec.observability.exporters.enabled


def _container(
    name: str, spec: Exporter, port: int, ready: Manifest, *, env: list[Manifest], args: list[str] | None = None
) -> Manifest:
    container: Manifest = {
        "name": name,
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "env": env,
        "ports": [{"name": METRICS_PORT_NAME, "containerPort": port, "protocol": "TCP"}],
        # alive: it listens; ready: it serves (the liveness probe must not be the readiness one, see kube-score)
        "livenessProbe": {**LISTENING, "periodSeconds": 20, "timeoutSeconds": 2, "failureThreshold": 3},
        "readinessProbe": {**ready, "periodSeconds": 10, "timeoutSeconds": 5},
        "resources": with_ephemeral_storage(spec.resources.manifest()),
        "securityContext": container_security(),
    }
    if args:
        container["args"] = args
    return container


def _http_probe(path: str) -> Manifest:
    return {"httpGet": {"path": path, "port": METRICS_PORT_NAME}}


def postgres_exporter(p: Platform, host: str, port: int, user: list[Manifest]) -> Manifest:
    """postgres_exporter over the `postgres` database; `user` sets DATA_SOURCE_USER and DATA_SOURCE_PASS."""
    # sslmode: the managed server is on localhost without TLS; an external one is asked for TLS when it offers it.
    ssl = "disable" if host == "127.0.0.1" else "prefer"
    env = [{"name": "DATA_SOURCE_URI", "value": f"{host}:{port}/postgres?sslmode={ssl}"}, *user]
    return _container(
        "postgres-exporter",
        p.spec.observability.exporters.postgres,
        POSTGRES_EXPORTER_PORT,
        _http_probe("/"),  # its landing page: does not touch the database, so a slow server does not restart it
        env=env,
        args=[f"--web.listen-address=:{POSTGRES_EXPORTER_PORT}"],
    )


def nats_exporter(p: Platform, monitor_url: str) -> Manifest:
    """prometheus-nats-exporter reading a NATS server's monitoring endpoint (/varz, /connz, /routez, /jsz)."""
    return _container(
        "nats-exporter",
        p.spec.observability.exporters.nats,
        NATS_EXPORTER_PORT,
        _http_probe("/metrics"),  # it has no health endpoint; its /metrics reads the local server's monitoring port
        env=[],
        args=[*NATS_EXPORTER_ARGS, monitor_url],
    )


def redis_exporter(p: Platform, address: str, password: list[Manifest]) -> Manifest:
    env = [
        {"name": "REDIS_ADDR", "value": address},
        {"name": "REDIS_EXPORTER_WEB_LISTEN_ADDRESS", "value": f":{REDIS_EXPORTER_PORT}"},
        *password,
    ]
    return _container(
        "redis-exporter", p.spec.observability.exporters.redis, REDIS_EXPORTER_PORT, _http_probe("/health"), env=env
    )


# ---- sidecars of the managed stores (called by their builders) -------------------------------------------------


def postgres_sidecars(p: Platform) -> list[Manifest]:
    """The managed PostgreSQL's exporter, as the `postgres` superuser (it reads pg_stat_* of every database)."""
    if not enabled(p) or p.spec.postgres.managed is None:
        return []
    user = [
        {"name": "DATA_SOURCE_USER", "value": "postgres"},
        secret_env("DATA_SOURCE_PASS", postgres_secret_name(p.name), POSTGRES_ADMIN_PASSWORD_KEY),
    ]
    return [postgres_exporter(p, "127.0.0.1", POSTGRES_PORT, user)]


def nats_sidecars(p: Platform) -> list[Manifest]:
    if not enabled(p) or p.spec.nats.managed is None:
        return []
    return [nats_exporter(p, f"http://127.0.0.1:{NATS_MONITOR_PORT}")]


def redis_sidecars(p: Platform) -> list[Manifest]:
    if not enabled(p) or p.spec.redis.managed is None:
        return []
    password = [secret_env("REDIS_PASSWORD", redis_secret_name(p.name), REDIS_PASSWORD_KEY)]
    return [redis_exporter(p, f"redis://127.0.0.1:{REDIS_PORT}", password)]


def metrics_port(p: Platform, store: str) -> dict[str, int]:
    """The `metrics` port of a managed store's Service (merged into its ports), when its exporter runs."""
    managed = getattr(p.spec, store).managed
    return {METRICS_PORT_NAME: EXPORTER_PORTS[store]} if enabled(p) and managed is not None else {}


# ---- Deployments for the external stores ---------------------------------------------------------------------


def exporter_component(store: str) -> str:
    return f"{store}-exporter"


def _external_containers(p: Platform) -> dict[str, Manifest]:
    """The exporter of each external store that can have one, by store."""
    out: dict[str, Manifest] = {}
    postgres = p.spec.postgres.external
    if postgres is not None:
        ref = postgres.credentials_secret_ref
        user = [
            secret_env("DATA_SOURCE_USER", ref.name, ref.username_key),
            secret_env("DATA_SOURCE_PASS", ref.name, ref.password_key),
        ]
        out["postgres"] = postgres_exporter(p, postgres.host, postgres.port, user)
    if p.spec.postgres.cloud_native_pg is not None:  # its primary, through the -rw Service, as the application role
        secret = cnpg_app_secret_name(p.name)
        user = [
            secret_env("DATA_SOURCE_USER", secret, APP_USERNAME_KEY),
            secret_env("DATA_SOURCE_PASS", secret, APP_PASSWORD_KEY),
        ]
        out["postgres"] = postgres_exporter(p, cnpg_rw_service_name(p.name), POSTGRES_PORT, user)
    monitor_url = p.spec.observability.exporters.nats.monitor_url
    if p.spec.nats.external is not None and monitor_url:
        out["nats"] = nats_exporter(p, monitor_url)
    redis = p.spec.redis.external
    if redis is not None:
        password = [ref_env("REDIS_PASSWORD", redis.password_secret_ref)] if redis.password_secret_ref else []
        out["redis"] = redis_exporter(p, redis.url, password)
    return out


def _deployment(p: Platform, component: str, container: Manifest) -> Manifest:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": child_metadata(p, component),
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector_labels(p.name, component)},
            "template": {"metadata": {"labels": labels(p.name, component)}, "spec": pod_spec(p, [container])},
        },
    }


def _service(p: Platform, component: str, port: int) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(p, component),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(p.name, component),
            "ports": [{"name": METRICS_PORT_NAME, "port": port, "targetPort": METRICS_PORT_NAME, "protocol": "TCP"}],
        },
    }


def external_exporter_ports(p: Platform) -> dict[str, int]:
    """Component name -> metrics port of the exporter Deployments (for the NetworkPolicies)."""
    if not enabled(p):
        return {}
    return {exporter_component(store): EXPORTER_PORTS[store] for store in _external_containers(p)}


def external_exporters(p: Platform) -> list[Manifest]:
    """A Deployment and a Service per external store's exporter (one replica: a gap in scraping is not an outage)."""
    if not enabled(p):
        return []
    out: list[Manifest] = []
    for store, container in _external_containers(p).items():
        component = exporter_component(store)
        out += [_deployment(p, component, container), _service(p, component, EXPORTER_PORTS[store])]
    return out
