"""NetworkPolicies (when `networkPolicy.enabled`): deny ingress by default, then open exactly what is used.

- gateway and websocket: their HTTP port from anywhere (they are the public door);
- every other service and the data stores: only from pods of the same platform;
- metrics ports: also from the namespaces labelled as `networkPolicy.metricsNamespaceLabels` (Prometheus).
Egress stays open: Algolia, Clerk and external stores live outside the cluster.
"""

from __future__ import annotations

from venta_operator.builders import Manifest
from venta_operator.components import (
    APP_COMPONENTS,
    IDENTITY,
    NATS_CLIENT_PORT,
    NATS_MONITOR_PORT,
    POSTGRES_PORT,
    REDIS_PORT,
    Component,
)
from venta_operator.naming import child_name, labels, platform_selector, selector_labels
from venta_operator.spec import Platform


def _policy(p: Platform, name: str, component: str, pod_selector: Manifest, ingress: list[Manifest]) -> Manifest:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": child_name(p.name, name), "namespace": p.namespace, "labels": labels(p.name, component)},
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
        rules = [{"from": [_from_platform(p)], "ports": _ports(*c.ports.values())}]
        rules += _metrics_rule(p, c.http_port)
    return _policy(p, c.name, c.name, {"matchLabels": selector_labels(p.name, c.name)}, rules)


def _store_policy(p: Platform, store: str, port: int, metrics_port: int | None = None) -> Manifest:
    rules: list[Manifest] = [{"from": [_from_platform(p)], "ports": _ports(port)}]
    if metrics_port is not None:
        rules += _metrics_rule(p, metrics_port)
    return _policy(p, store, store, {"matchLabels": selector_labels(p.name, store)}, rules)


def network_policies(p: Platform) -> list[Manifest]:
    if not p.spec.network_policy.enabled:
        return []
    out = [_policy(p, "default-deny", "network", {"matchLabels": platform_selector(p.name)}, [])]
    components = [*APP_COMPONENTS, *([IDENTITY] if p.spec.identity.mode == "local" else [])]
    out += [_component_policy(p, c) for c in components]
    if p.spec.nats.managed is not None:
        out.append(_store_policy(p, "nats", NATS_CLIENT_PORT, NATS_MONITOR_PORT))
    if p.spec.postgres.managed is not None:
        out.append(_store_policy(p, "postgres", POSTGRES_PORT))
    if p.spec.redis.managed is not None:
        out.append(_store_policy(p, "redis", REDIS_PORT))
    return out
