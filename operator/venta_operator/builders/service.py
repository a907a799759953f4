"""Services: one per component (named ports `http` and `grpc`), plus client and headless Services for the stores.

Port names matter: the ServiceMonitor scrapes the port named `http` of every Service of the platform.
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
from venta_operator.naming import child_name, labels, selector_labels
from venta_operator.spec import Platform


def headless_name(platform: str, component: str) -> str:
    return child_name(platform, f"{component}-headless")


def _service(p: Platform, name: str, component: str, ports: dict[str, int], *,
             service_type: str = "ClusterIP", headless: bool = False) -> Manifest:
    spec: Manifest = {
        "type": service_type,
        "selector": selector_labels(p.name, component),
        "ports": [{"name": n, "port": port, "targetPort": n, "protocol": "TCP"} for n, port in ports.items()],
    }
    if headless:
        spec["clusterIP"] = "None"
        spec["publishNotReadyAddresses"] = True
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": p.namespace, "labels": labels(p.name, component)},
        "spec": spec,
    }


def component_service(p: Platform, c: Component) -> Manifest:
    svc = p.spec.services.get(c.key)
    service_type = svc.service_type if svc and c.public else "ClusterIP"
    return _service(p, child_name(p.name, c.name), c.name, c.ports, service_type=service_type)


def service_services(p: Platform) -> list[Manifest]:
    out = [component_service(p, c) for c in APP_COMPONENTS]
    if p.spec.identity.mode == "local":
        out.append(component_service(p, IDENTITY))
    return out


def store_services(p: Platform) -> list[Manifest]:
    out: list[Manifest] = []
    if p.spec.nats.managed is not None:
        ports = {"client": NATS_CLIENT_PORT, "monitor": NATS_MONITOR_PORT}
        out += [_service(p, child_name(p.name, "nats"), "nats", ports),
                _service(p, headless_name(p.name, "nats"), "nats", ports, headless=True)]
    if p.spec.postgres.managed is not None:
        ports = {"postgres": POSTGRES_PORT}
        out += [_service(p, child_name(p.name, "postgres"), "postgres", ports),
                _service(p, headless_name(p.name, "postgres"), "postgres", ports, headless=True)]
    if p.spec.redis.managed is not None:
        out.append(_service(p, child_name(p.name, "redis"), "redis", {"redis": REDIS_PORT}))
    return out


def services(p: Platform) -> list[Manifest]:
    return [*service_services(p), *store_services(p)]
