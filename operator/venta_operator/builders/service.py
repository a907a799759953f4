"""Services: one per component (named ports `http` and `grpc`), plus client and headless Services for the stores.

Port names matter: the ServiceMonitor scrapes the port named `http` of every Service of the platform.

gRPC services also get a headless Service listing only their ready pods: a gRPC client keeps one long-lived HTTP/2
connection, so through a ClusterIP (one virtual address, balanced per connection) every call of a peer would go to
the one replica it happened to connect to. Peers resolve the headless name instead and spread calls over every
replica (round robin, `services/kit/grpc/client.py`). Socket.IO's Service is sticky per client address: long-polling
sends each poll as a new request, and only the replica that accepted the handshake knows the session.
"""

from __future__ import annotations

from venta_operator.builders import Manifest
from venta_operator.builders.exporters import metrics_port
from venta_operator.components import (
    APP_COMPONENTS,
    IDENTITY,
    NATS_CLIENT_PORT,
    NATS_CLUSTER_PORT,
    NATS_MONITOR_PORT,
    POSTGRES_PORT,
    REDIS_PORT,
    Component,
)
from venta_operator.naming import child_name, headless_name, labels, selector_labels
from venta_operator.spec import Platform

STICKY_TIMEOUT_S = 3 * 3600  # kube-proxy's default: longer than any Socket.IO session's reconnect cycle


def _service(
    p: Platform,
    name: str,
    component: str,
    ports: dict[str, int],
    *,
    service_type: str = "ClusterIP",
    headless: bool = False,
    not_ready: bool = True,
    sticky: bool = False,
) -> Manifest:
    """`not_ready` (headless only): list pods before they are ready, as a StatefulSet's peers need."""
    spec: Manifest = {
        "type": service_type,
        "selector": selector_labels(p.name, component),
        "ports": [{"name": n, "port": port, "targetPort": n, "protocol": "TCP"} for n, port in ports.items()],
    }
    if headless:
        spec["clusterIP"] = "None"
        if not_ready:  # false is the API server's default, which it leaves out: stating it would look like drift
            spec["publishNotReadyAddresses"] = True
    if sticky:
        spec["sessionAffinity"] = "ClientIP"
        spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": STICKY_TIMEOUT_S}}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": p.namespace, "labels": labels(p.name, component)},
        "spec": spec,
    }


def component_service(p: Platform, c: Component) -> Manifest:
    svc = p.spec.services.get(c.key)
    service_type = svc.service_type if svc and c.public else "ClusterIP"
    return _service(p, child_name(p.name, c.name), c.name, c.ports, service_type=service_type, sticky=c.sticky)


def grpc_headless_service(p: Platform, c: Component) -> Manifest | None:
    """The ready replicas of a gRPC service, one DNS record each, for client-side load balancing."""
    if c.grpc_port is None:
        return None
    return _service(p, headless_name(p.name, c.name), c.name, {"grpc": c.grpc_port}, headless=True, not_ready=False)


def service_services(p: Platform) -> list[Manifest]:
    out = [component_service(p, c) for c in APP_COMPONENTS]
    out += [s for s in (grpc_headless_service(p, c) for c in APP_COMPONENTS) if s is not None]
    if p.spec.identity.mode == "local":
        out.append(component_service(p, IDENTITY))
    return out


def store_services(p: Platform) -> list[Manifest]:
    out: list[Manifest] = []
    if p.spec.nats.managed is not None:
        ports = {"client": NATS_CLIENT_PORT, "monitor": NATS_MONITOR_PORT}
        # a cluster's routes: only on the headless Service, whose per-pod names the servers dial (not-ready too)
        peers = {**ports, "cluster": NATS_CLUSTER_PORT} if p.spec.nats.managed.clustered else ports
        out += [
            _service(p, child_name(p.name, "nats"), "nats", {**ports, **metrics_port(p, "nats")}),
            _service(p, headless_name(p.name, "nats"), "nats", peers, headless=True),
        ]
    if p.spec.postgres.managed is not None:
        ports = {"postgres": POSTGRES_PORT}
        out += [
            _service(p, child_name(p.name, "postgres"), "postgres", {**ports, **metrics_port(p, "postgres")}),
            _service(p, headless_name(p.name, "postgres"), "postgres", ports, headless=True),
        ]
    if p.spec.redis.managed is not None:
        out.append(_service(p, child_name(p.name, "redis"), "redis", {"redis": REDIS_PORT, **metrics_port(p, "redis")}))
        if p.spec.redis.managed.persistent:  # the StatefulSet's governing Service
            out.append(_service(p, headless_name(p.name, "redis"), "redis", {"redis": REDIS_PORT}, headless=True))
    return out


def services(p: Platform) -> list[Manifest]:
    return [*service_services(p), *store_services(p)]
