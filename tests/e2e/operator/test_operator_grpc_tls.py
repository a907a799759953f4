"""On the KWOK cluster: `spec.network.grpcTLS` naming a Secret that does not exist degrades the platform, naming
each missing key, until the Secret is created; then every gRPC Deployment mounts it. The local issuer's admin token
is generated once into its own Secret and given to the identity Deployment with the requirement to have it."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.support.operator_e2e import Platforms, wait_for

pytestmark = pytest.mark.cluster

GRPC = ("users", "location", "vendors", "gateway", "websocket", "notifications", "identity")


def _degraded(platforms: Platforms, name: str) -> str:
    condition = platforms.condition(name, "Degraded")
    return str(condition.get("message", "")) if condition.get("status") == "True" else ""


def _pod(platforms: Platforms, deployment: str) -> dict[str, Any]:
    return (platforms.get("deployment", deployment) or {})["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def test_grpc_tls_waits_for_its_secret_and_the_admin_token_is_generated(platforms: Platforms) -> None:
    platforms.apply(
        {
            "apiVersion": "venta.io/v1alpha1",
            "kind": "VentaPlatform",
            "metadata": {"name": "mtls"},
            "spec": {"version": "1.0.0", "network": {"grpcTLS": {"secretName": "mtls-grpc"}}},
        }
    )
    wait_for(lambda: "mtls-grpc" in _degraded(platforms, "mtls"), timeout=60, what="Degraded naming the Secret")
    message = _degraded(platforms, "mtls")
    for key in ("tls.crt", "tls.key", "ca.crt"):
        assert f"Secret mtls-grpc (key {key}) not found" in message, message
    pem = base64.b64encode(b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n").decode()
    platforms.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "mtls-grpc"},
            "type": "Opaque",
            "data": {"tls.crt": pem, "tls.key": pem, "ca.crt": pem},
        }
    )
    platforms.wait_ready("mtls")
    for component in GRPC:
        pod = _pod(platforms, f"mtls-{component}")
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["grpc-tls"]["secret"]["secretName"] == "mtls-grpc", component
        env = {e["name"] for e in pod["containers"][0]["env"]}
        assert {"VENTA_GRPC_TLS_CERT_FILE", "VENTA_GRPC_TLS_KEY_FILE", "VENTA_GRPC_TLS_CA_FILE"} <= env, component
    assert "grpc-tls" not in {v["name"] for v in _pod(platforms, "mtls-search-sync")["volumes"]}

    secret = platforms.get("secret", "mtls-identity-admin") or {}
    token = base64.b64decode(secret["data"]["token"]).decode()
    assert len(token) >= 32 and secret["metadata"]["ownerReferences"][0]["kind"] == "VentaPlatform"
    identity = {e["name"]: e for e in _pod(platforms, "mtls-identity")["containers"][0]["env"]}
    assert identity["VENTA_IDENTITY_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "mtls-identity-admin",
        "key": "token",
    }
    assert identity["VENTA_IDENTITY_REQUIRE_ADMIN_TOKEN"]["value"] == "true"
