"""Internal gRPC over mutual TLS (`spec.network.grpcTLS`): the Secret's volume and the kit's settings, per pod.

Every pod that serves gRPC or calls a peer over it (the `GRPC` need in components.py, and the re-index Job) mounts
the user's Secret (`tls.crt`, `tls.key`, `ca.crt`: what cert-manager writes) read-only and points the kit's
`VENTA_GRPC_TLS_*` settings at it. Probes are unaffected: they are HTTP, on the side port that stays plaintext.
Nothing here reads the Secret: a missing one is reported in the status by the reconciler (`referenced_secrets`).
"""

from __future__ import annotations

from venta_operator.builders import Manifest
from venta_operator.spec import Platform, SecretKeyRef

GRPC_TLS_DIR = "/var/run/venta/grpc-tls"
GRPC_TLS_VOLUME = "grpc-tls"
CERT_KEY, PRIVATE_KEY_KEY, CA_KEY = "tls.crt", "tls.key", "ca.crt"
TLS_KEYS = (CERT_KEY, PRIVATE_KEY_KEY, CA_KEY)


def grpc_tls_refs(p: Platform) -> list[SecretKeyRef]:
    """The Secret keys the pods mount: checked each pass like every other referenced Secret."""
    tls = p.spec.network.grpc_tls
    return [] if tls is None else [SecretKeyRef(name=tls.secret_name, key=k) for k in TLS_KEYS]


def grpc_tls_env(p: Platform) -> list[Manifest]:
    tls = p.spec.network.grpc_tls
    if tls is None:
        return []
    env = [
        {"name": "VENTA_GRPC_TLS_CERT_FILE", "value": f"{GRPC_TLS_DIR}/{CERT_KEY}"},
        {"name": "VENTA_GRPC_TLS_KEY_FILE", "value": f"{GRPC_TLS_DIR}/{PRIVATE_KEY_KEY}"},
        {"name": "VENTA_GRPC_TLS_CA_FILE", "value": f"{GRPC_TLS_DIR}/{CA_KEY}"},
    ]
    if tls.server_name:
        env.append({"name": "VENTA_GRPC_TLS_SERVER_NAME", "value": tls.server_name})
    return env


def grpc_tls_volumes(p: Platform) -> tuple[list[Manifest], list[Manifest]]:
    """(volumes, mounts): the Secret's three keys, read-only, readable by the pod's group only."""
    tls = p.spec.network.grpc_tls
    if tls is None:
        return [], []
    volume = {
        "name": GRPC_TLS_VOLUME,
        "secret": {
            "secretName": tls.secret_name,
            "defaultMode": 0o440,
            "items": [{"key": k, "path": k} for k in TLS_KEYS],
        },
    }
    return [volume], [{"name": GRPC_TLS_VOLUME, "mountPath": GRPC_TLS_DIR, "readOnly": True}]
