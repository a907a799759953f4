"""NetworkPolicies (when `networkPolicy.enabled`): deny ingress by default, then open exactly what is used.

- gateway and websocket: their HTTP port from anywhere (they are the public door);
- every other service: only from the components that call it (`CALLERS`, read off the peer clients each service
  builds) and the re-index Job and CronJob (`venta reindex` reads every vendor over gRPC); nothing calls search sync;
- the data stores: only from pods of the same platform (services, the migration and re-index Jobs, exporters);
- a clustered NATS: its route port only between its own servers;
- metrics ports: also from the namespaces labelled as `networkPolicy.metricsNamespaceLabels` (Prometheus).
Egress stays open: Algolia, Clerk and external stores live outside the cluster.
"""

from __future__ import annotations

from venta_operator.builders import Manifest, child_metadata
from venta_operator.builders.exporters import external_exporter_ports
from venta_operator.builders.exporters import metrics_port as metrics_port_of
from venta_operator.builders.job import REINDEX
from venta_operator.components import (
    APP_COMPONENTS,
    GATEWAY,
    IDENTITY,
    LOCATION,
    NATS_CLIENT_PORT,
    NATS_CLUSTER_PORT,
    NATS_MONITOR_PORT,
    NOTIFICATIONS,
    POSTGRES_PORT,
    REDIS_PORT,
    SEARCH_SYNC,
    USERS,
    VENDORS,
    WEBSOCKET,
    Component,
)
from venta_operator.naming import platform_selector, selector_labels
from venta_operator.spec import Platform

# Who calls each internal component (services/*/app.py and gateway/resources.py build these peer clients): the
# gateway and the live map call the gRPC services and verify tokens against the local issuer's JWKS; users looks up
# vendors; notifications resolves users and vendors and verifies tokens; the local issuer asks users for the user id.
CALLERS: dict[str, tuple[str, ...]] = {
    USERS.name: (GATEWAY.name, WEBSOCKET.name, NOTIFICATIONS.name, IDENTITY.name),
    VENDORS.name: (GATEWAY.name, WEBSOCKET.name, USERS.name, NOTIFICATIONS.name, REINDEX),
    LOCATION.name: (GATEWAY.name, WEBSOCKET.name),
    NOTIFICATIONS.name: (GATEWAY.name,),
    IDENTITY.name: (GATEWAY.name, WEBSOCKET.name, NOTIFICATIONS.name),
    SEARCH_SYNC.name: (),  # consumes events, calls nobody's API and is called by nobody: probes and metrics only
}


def _policy(p: Platform, name: str, component: str, pod_selector: Manifest, ingress: list[Manifest]) -> Manifest:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": child_metadata(p, name, component),
        "spec": {"podSelector": pod_selector, "policyTypes": ["Ingress"], "ingress": ingress},
    }


def _ports(*ports: int) -> list[Manifest]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def _from_platform(p: Platform) -> Manifest:
    return {"podSelector": {"matchLabels": platform_selector(p.name)}}


def _metrics_rule(p: Platform, port: int) -> list[Manifest]:
    labels_ = p.spec.network_policy.metrics_namespace_labels
    if not labels_:
        return []
    return [{"from": [{"namespaceSelector": {"matchLabels": dict(labels_)}}], "ports": _ports(port)}]


def _component_policy(p: Platform, c: Component) -> Manifest:
    if c.public:
        rules: list[Manifest] = [{"ports": _ports(c.http_port)}]  # no `from`: anyone
    else:
        callers = [{"podSelector": {"matchLabels": selector_labels(p.name, caller)}} for caller in CALLERS[c.name]]
        rules = [{"from": callers, "ports": _ports(*c.ports.values())}] if callers else []
        rules += _metrics_rule(p, c.http_port)
    return _policy(p, c.name, c.name, {"matchLabels": selector_labels(p.name, c.name)}, rules)


def _store_policy(p: Platform, store: str, port: int, *metrics_ports: int) -> Manifest:
    rules: list[Manifest] = [{"from": [_from_platform(p)], "ports": _ports(port)}]
    for metrics_port in (*metrics_ports, *metrics_port_of(p, store).values()):  # the exporter's, when it runs
        rules += _metrics_rule(p, metrics_port)
    return _policy(p, store, store, {"matchLabels": selector_labels(p.name, store)}, rules)


def network_policies(p: Platform) -> list[Manifest]:
    if not p.spec.network_policy.enabled:
        return []
    out = [_policy(p, "default-deny", "network", {"matchLabels": platform_selector(p.name)}, [])]
    components = [*APP_COMPONENTS, *([IDENTITY] if p.spec.identity.mode == "local" else [])]
    out += [_component_policy(p, c) for c in components]
    if p.spec.nats.managed is not None:
        nats = _store_policy(p, "nats", NATS_CLIENT_PORT, NATS_MONITOR_PORT)
        if p.spec.nats.managed.clustered:
            peers = {"podSelector": {"matchLabels": selector_labels(p.name, "nats")}}
            nats["spec"]["ingress"].append({"from": [peers], "ports": _ports(NATS_CLUSTER_PORT)})
        out.append(nats)
    if p.spec.postgres.managed is not None:
        out.append(_store_policy(p, "postgres", POSTGRES_PORT))
    if p.spec.redis.managed is not None:
        out.append(_store_policy(p, "redis", REDIS_PORT))
    for exporter, port in external_exporter_ports(p).items():  # an external store's exporter: scraped, nothing else
        out.append(
            _policy(p, exporter, exporter, {"matchLabels": selector_labels(p.name, exporter)}, _metrics_rule(p, port))
        )
    return out
