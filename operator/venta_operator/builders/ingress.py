"""The public door (`spec.ingress`): the gateway's API and the live map on one host, TLS terminated in front of them.

Routing is the same whichever object carries it: `/socket.io` (the Socket.IO gateway's path, python-engineio's
default) goes to the websocket Service, everything else to the gateway's. The object is

- two `networking.k8s.io/v1` Ingresses, one per backend, for the same host and certificate (controllers merge them):
  ingress-nginx and HAProxy take timeouts and affinity per Ingress, and only the live map needs an hour-long
  proxy timeout (a WebSocket is one long request) and cookie affinity (Socket.IO's long-polling sends each poll as a
  new request that only the replica holding the session can answer; the Service's ClientIP affinity sees the
  controller's address, not the client's). Traefik needs no annotation: it proxies upgrades and keeps no idle
  timeout on them. The user's annotations are merged last, so they win;
- or, with `gatewayRef`, one Gateway API `HTTPRoute` attached to that Gateway, whose listener terminates TLS;
- plus a cert-manager `Certificate` for the host into `tls.secretName` when `tls.certManager` is set.

HTTPRoute and Certificate are optional kinds: built only when the cluster serves them (the reconciler passes what
discovery found), and their absence is reported as a problem in the status instead of failing the whole reconcile.
Pure: no I/O; whether the named Secret exists is checked by the reconciler (`referenced_secrets`).
"""

from __future__ import annotations

from venta_operator.builders import Manifest, child_metadata
from venta_operator.components import GATEWAY, WEBSOCKET, Component
from venta_operator.endpoints import SOCKET_IO_PATH
from venta_operator.naming import child_name
from venta_operator.spec import Platform, SecretKeyRef

GATEWAY_API = "gateway.networking.k8s.io/v1"
CERT_MANAGER_API = "cert-manager.io/v1"
HTTP_ROUTE = "HTTPRoute"
CERTIFICATE = "Certificate"
OPTIONAL_KINDS = frozenset({HTTP_ROUTE, CERTIFICATE})  # served only if Gateway API / cert-manager are installed

TUNNEL_TIMEOUT_S = 3600  # how long an idle WebSocket may stay open through the controller
AFFINITY_COOKIE = "venta-live"

# Per-controller annotations of the live map's Ingress; each controller ignores the others' prefixes.
LIVE_MAP_ANNOTATIONS = {
    # ingress-nginx: WebSocket upgrades are proxied by default, but an idle one is cut after 60 s
    "nginx.ingress.kubernetes.io/proxy-read-timeout": str(TUNNEL_TIMEOUT_S),
    "nginx.ingress.kubernetes.io/proxy-send-timeout": str(TUNNEL_TIMEOUT_S),
    "nginx.ingress.kubernetes.io/affinity": "cookie",
    "nginx.ingress.kubernetes.io/affinity-mode": "persistent",
    "nginx.ingress.kubernetes.io/session-cookie-name": AFFINITY_COOKIE,
    # HAProxy Kubernetes Ingress Controller: the tunnel timeout applies once the connection is upgraded
    "haproxy.org/timeout-tunnel": f"{TUNNEL_TIMEOUT_S}s",
    "haproxy.org/cookie-persistence": AFFINITY_COOKIE,
}

TLS_KEYS = ("tls.crt", "tls.key")  # a kubernetes.io/tls Secret's keys


def _ingress(p: Platform, c: Component, path: str, annotations: dict[str, str]) -> Manifest:
    ing = p.spec.ingress
    assert ing.host is not None
    spec: Manifest = {
        "rules": [
            {
                "host": ing.host,
                "http": {
                    "paths": [
                        {
                            "path": path,
                            "pathType": "Prefix",
                            "backend": {
                                "service": {"name": child_name(p.name, c.name), "port": {"number": c.http_port}}
                            },
                        }
                    ]
                },
            }
        ]
    }
    if ing.class_name is not None:
        spec["ingressClassName"] = ing.class_name
    if ing.tls is not None:
        spec["tls"] = [{"hosts": [ing.host], "secretName": ing.tls.secret_name}]
    metadata = child_metadata(p, c.name)
    merged = {**annotations, **ing.annotations}
    if merged:
        metadata["annotations"] = merged
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": metadata, "spec": spec}


def ingresses(p: Platform) -> list[Manifest]:
    return [_ingress(p, GATEWAY, "/", {}), _ingress(p, WEBSOCKET, SOCKET_IO_PATH, LIVE_MAP_ANNOTATIONS)]


def _backend(p: Platform, c: Component) -> Manifest:
    # stated in full, with the API server's defaults, so that the stored object reads back as written (no drift)
    return {"group": "", "kind": "Service", "name": child_name(p.name, c.name), "port": c.http_port, "weight": 1}


def http_route(p: Platform) -> Manifest:
    ing = p.spec.ingress
    assert ing.host is not None and ing.gateway_ref is not None
    ref = ing.gateway_ref
    parent: Manifest = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": ref.name}
    if ref.namespace is not None:
        parent["namespace"] = ref.namespace
    if ref.section_name is not None:
        parent["sectionName"] = ref.section_name
    metadata = child_metadata(p, "public", "ingress")
    if ing.annotations:
        metadata["annotations"] = dict(ing.annotations)
    return {
        "apiVersion": GATEWAY_API,
        "kind": HTTP_ROUTE,
        "metadata": metadata,
        "spec": {
            "parentRefs": [parent],
            "hostnames": [ing.host],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": SOCKET_IO_PATH}}],
                    "backendRefs": [_backend(p, WEBSOCKET)],
                    "timeouts": {"request": "0s"},  # zero disables it: a WebSocket is one request that lasts
                },
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [_backend(p, GATEWAY)],
                },
            ],
        },
    }


def certificate(p: Platform) -> Manifest:
    ing = p.spec.ingress
    assert ing.host is not None and ing.tls is not None and ing.tls.cert_manager is not None
    issuer = ing.tls.cert_manager.issuer_ref
    return {
        "apiVersion": CERT_MANAGER_API,
        "kind": CERTIFICATE,
        "metadata": child_metadata(p, "public-tls", "ingress"),
        "spec": {
            "secretName": ing.tls.secret_name,
            "dnsNames": [ing.host],
            "issuerRef": {"name": issuer.name, "kind": issuer.kind, "group": issuer.group},
        },
    }


def edge(p: Platform, available_kinds: frozenset[str]) -> list[Manifest]:
    """The Ingresses or the HTTPRoute, and the Certificate, that `spec.ingress` asks for and the cluster can hold."""
    ing = p.spec.ingress
    if not ing.enabled:
        return []
    out: list[Manifest] = []
    if ing.gateway_ref is None:
        out += ingresses(p)
    elif HTTP_ROUTE in available_kinds:
        out.append(http_route(p))
    if ing.tls is not None and ing.tls.cert_manager is not None and CERTIFICATE in available_kinds:
        out.append(certificate(p))
    return out


def edge_problems(p: Platform, available_kinds: frozenset[str]) -> list[str]:
    """What `spec.ingress` asks for but the cluster cannot give: shown in the Ready condition, retried each pass."""
    ing = p.spec.ingress
    if not ing.enabled:
        return []
    problems = []
    if ing.gateway_ref is not None and HTTP_ROUTE not in available_kinds:
        problems.append(
            f"ingress.gatewayRef is set but the cluster does not serve {GATEWAY_API} {HTTP_ROUTE}: install the "
            "Gateway API CRDs, or remove gatewayRef to get an Ingress"
        )
    if ing.tls is not None and ing.tls.cert_manager is not None and CERTIFICATE not in available_kinds:
        problems.append(
            f"ingress.tls.certManager is set but the cluster does not serve {CERT_MANAGER_API} {CERTIFICATE}: "
            f"install cert-manager, or remove certManager and create Secret {ing.tls.secret_name} yourself"
        )
    return problems


def edge_wanted_kinds(p: Platform) -> frozenset[str]:
    """The optional kinds `spec.ingress` asks for (looked for at every pass while the cluster does not serve them)."""
    ing = p.spec.ingress
    out = set()
    if ing.enabled and ing.gateway_ref is not None:
        out.add(HTTP_ROUTE)
    if ing.enabled and ing.tls is not None and ing.tls.cert_manager is not None:
        out.add(CERTIFICATE)
    return frozenset(out)


def tls_secret_refs(p: Platform) -> list[SecretKeyRef]:
    """The certificate Secret the user provides (cert-manager's own is written later, by cert-manager)."""
    ing = p.spec.ingress
    if not ing.enabled or ing.tls is None or ing.tls.cert_manager is not None or ing.tls.secret_name is None:
        return []
    return [SecretKeyRef(name=ing.tls.secret_name, key=key) for key in TLS_KEYS]
