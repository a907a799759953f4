"""In-cluster addresses of the platform's parts, used both in the settings ConfigMap and in `status.endpoints`.

One function per address so the ConfigMap the services read and the endpoints the status reports cannot disagree.
"""

from __future__ import annotations

from venta_operator.components import (
    GATEWAY,
    IDENTITY,
    JWKS_PATH,
    NATS_CLIENT_PORT,
    POSTGRES_PORT,
    REDIS_PORT,
    WEBSOCKET,
    Component,
)
from venta_operator.naming import child_name, headless_name
from venta_operator.spec import Platform

SOCKET_IO_PATH = "/socket.io"  # the live map's Socket.IO path (python-socketio's default, the clients' too)


def _svc(p: Platform, service: str) -> str:
    return f"{service}.{p.namespace}.svc"


def host(p: Platform, suffix: str) -> str:
    return _svc(p, child_name(p.name, suffix))


def peer_addr(p: Platform, c: Component) -> str:
    """The gRPC target of a service, as VENTA_<SERVICE>_ADDR expects it: its headless name, every ready replica."""
    return f"dns:///{_svc(p, headless_name(p.name, c.name))}:{c.grpc_port}"


def nats_url(p: Platform) -> str:
    if p.spec.nats.external is not None:
        return p.spec.nats.external.url
    return f"nats://{host(p, 'nats')}:{NATS_CLIENT_PORT}"


def redis_url(p: Platform) -> str:
    if p.spec.redis.external is not None:
        return p.spec.redis.external.url
    return f"redis://{host(p, 'redis')}:{REDIS_PORT}/0"


def postgres_host_port(p: Platform) -> tuple[str, int]:
    """Where the services write: the external server, CloudNativePG's read-write Service (the current primary, also
    after a failover), or the managed StatefulSet's Service."""
    if p.spec.postgres.external is not None:
        return p.spec.postgres.external.host, p.spec.postgres.external.port
    if p.spec.postgres.cloud_native_pg is not None:
        return _svc(p, f"{child_name(p.name, 'postgres')}-rw"), POSTGRES_PORT
    return host(p, "postgres"), POSTGRES_PORT


def http_url(p: Platform, c: Component) -> str:
    return f"http://{host(p, c.name)}:{c.http_port}"


def identity_issuer(p: Platform) -> str:
    return http_url(p, IDENTITY)


def identity_jwks_url(p: Platform) -> str:
    return identity_issuer(p) + JWKS_PATH


def status_endpoints(p: Platform) -> dict[str, str]:
    """What `status.endpoints` shows: where clients and operators reach each part."""
    pg_host, pg_port = postgres_host_port(p)
    return {
        "gateway": http_url(p, GATEWAY),
        "websocket": http_url(p, WEBSOCKET),
        "nats": nats_url(p),
        "postgres": f"{pg_host}:{pg_port}",
        "redis": redis_url(p),
        **public_urls(p),  # the public host, over https when it has TLS
    }


def public_urls(p: Platform) -> dict[str, str]:
    """Where clients outside the cluster reach the platform (`spec.ingress`): the API and the live map."""
    ing = p.spec.ingress
    if not ing.enabled or ing.host is None:
        return {}
    scheme = "https" if ing.tls is not None else "http"
    return {"public": f"{scheme}://{ing.host}", "liveMap": f"{scheme}://{ing.host}{SOCKET_IO_PATH}"}
