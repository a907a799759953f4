"""The public door on a real API server, with cert-manager's and Gateway API's own published CRDs.

No ingress controller, Gateway implementation or cert-manager controller runs on KWOK: what is proven is that the
API server of a cluster with those CRDs accepts the Ingresses, HTTPRoute and Certificate the operator writes (their
schemas and CEL rules, through the chart's RBAC); that a platform asking for a kind the cluster does not serve, or
naming a certificate Secret that does not exist, says so in its Ready condition and picks the kind up as soon as it
is installed (no cache to wait for); that a converged platform rewrites none of them (no drift flapping on their
server-side defaults); that NetworkPolicies are there by default; and that garbage is refused by the API server.

The CRD files come from the Go modules pinned in tests/cluster/build.sh (EDGE_CRDS).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.cluster.kwok import Kubectl, KwokCluster
from tests.support.operator_e2e import OperatorProcess, Platforms, platform_manifest, wait_for

pytestmark = pytest.mark.cluster

CRD_FILES = (
    "cert-manager.io_certificates.yaml",
    "cert-manager.io_issuers.yaml",
    "cert-manager.io_clusterissuers.yaml",
    "gateway.networking.k8s.io_gatewayclasses.yaml",
    "gateway.networking.k8s.io_gateways.yaml",
    "gateway.networking.k8s.io_httproutes.yaml",
)
CRDS = ("certificates.cert-manager.io", "httproutes.gateway.networking.k8s.io")
HOST = "api.venta.example"
ISSUER = {"issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"}}


def _crd_files(kube_cluster: KwokCluster) -> list[Path]:
    crds = kube_cluster.tools.edge_crds
    if crds is None or not all((crds / f).is_file() for f in CRD_FILES):
        pytest.fail("cert-manager's and Gateway API's CRDs are not in the cache: run tests/cluster/build.sh")
    return [crds / f for f in CRD_FILES]


def _install_crds(kubectl: Kubectl, kube_cluster: KwokCluster) -> None:
    for path in _crd_files(kube_cluster):  # server-side: larger than client-side apply's annotation may hold
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    for crd in CRDS:
        kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")


def _ready_message(platforms: Platforms, name: str) -> str:
    return str(platforms.condition(name).get("message", ""))


def _edge_applies(operator: OperatorProcess) -> float:
    return sum(
        v
        for k, v in operator.metrics().items()
        if k.startswith("venta_operator_api_requests_total{")
        and "verb=apply" in k
        and any(f"kind={kind}," in k for kind in ("Ingress", "HTTPRoute", "Certificate"))
    )


def test_the_public_door_on_a_cluster_with_cert_manager_and_gateway_api(
    platforms: Platforms, kubectl: Kubectl, kube_cluster: KwokCluster, operator: OperatorProcess, tmp_path: Path
) -> None:
    for crd in CRDS:  # the session's first use of these CRDs: start from a cluster without them
        kubectl("delete", "crd", crd, "--ignore-not-found", "--wait=true", "--timeout=60s")
    door = {
        "enabled": True,
        "host": HOST,
        "gatewayRef": {"name": "edge", "namespace": "gateways", "sectionName": "https"},
        "tls": {"secretName": "door-tls", "certManager": ISSUER},
    }
    platforms.apply(platform_manifest("door", {"ingress": door}))
    wait_for(
        lambda: (
            "cert-manager.io/v1 Certificate" in (m := _ready_message(platforms, "door"))
            and "gateway.networking.k8s.io/v1 HTTPRoute" in m
        ),
        timeout=60,
        what=lambda: f"the missing kinds named in Ready: {_ready_message(platforms, 'door')}",
    )
    assert platforms.get("vp", "door")["status"]["endpoints"]["public"] == f"https://{HOST}"  # type: ignore[index]
    assert "door-default-deny" in platforms.names("networkpolicy")  # on by default

    # cert-manager and Gateway API arrive: the waiting platform finds them at its next pass
    _install_crds(kubectl, kube_cluster)
    route = wait_for(lambda: platforms.get("httproute", "door-public"), timeout=60, what="the HTTPRoute")
    cert = wait_for(lambda: platforms.get("certificate", "door-public-tls"), timeout=60, what="the Certificate")
    assert route["spec"]["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": "edge",
            "namespace": "gateways",
            "sectionName": "https",
        }
    ]
    assert [r["backendRefs"][0]["name"] for r in route["spec"]["rules"]] == ["door-websocket", "door-gateway"]
    assert cert["spec"]["secretName"] == "door-tls" and cert["spec"]["dnsNames"] == [HOST]
    assert cert["spec"]["issuerRef"] == {"name": "letsencrypt", "kind": "ClusterIssuer", "group": "cert-manager.io"}
    assert cert["metadata"]["ownerReferences"][0]["kind"] == "VentaPlatform"
    assert platforms.names("ingress") == set()  # the route, not an Ingress
    wait_for(
        lambda: "does not serve" not in _ready_message(platforms, "door"),
        timeout=60,
        what=lambda: f"the problems gone: {_ready_message(platforms, 'door')}",
    )
    assert "applying failed" not in _ready_message(platforms, "door")

    # an Ingress with a certificate the user provides: named when missing, forgotten once created
    plain = {"enabled": True, "host": "live.venta.example", "className": "nginx", "tls": {"secretName": "own-tls"}}
    platforms.apply(platform_manifest("own", {"ingress": plain}))
    wait_for(
        lambda: "Secret own-tls (key tls.crt) not found" in _ready_message(platforms, "own"),
        timeout=60,
        what=lambda: f"the missing Secret named: {_ready_message(platforms, 'own')}",
    )
    live = wait_for(lambda: platforms.get("ingress", "own-websocket"), timeout=60, what="the live map's Ingress")
    assert live["spec"]["ingressClassName"] == "nginx"
    assert live["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/socket.io"
    assert live["metadata"]["annotations"]["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert platforms.get("ingress", "own-gateway") is not None
    crt, key = _self_signed(tmp_path, "live.venta.example")
    kubectl("-n", platforms.ns, "create", "secret", "tls", "own-tls", f"--cert={crt}", f"--key={key}")
    wait_for(
        lambda: "own-tls" not in _ready_message(platforms, "own"),
        timeout=60,
        what=lambda: f"the Secret found: {_ready_message(platforms, 'own')}",
    )

    # converged: drift passes (every 4 s here) find the three kinds as desired, server-side defaults and all
    time.sleep(6)
    before = _edge_applies(operator)
    time.sleep(10)
    assert _edge_applies(operator) == before


def _self_signed(directory: Path, host: str) -> tuple[Path, Path]:
    """A throwaway certificate for the Secret (the API server checks nothing but the Secret's shape here)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    start = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    crt, key_file = directory / "tls.crt", directory / "tls.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    key_file.write_bytes(pem)
    return crt, key_file


@pytest.mark.parametrize(
    ("ingress", "expected"),
    [
        ({"enabled": True}, ["spec.ingress.host", "ingress.host is required when ingress.enabled is true"]),
        (
            {"enabled": True, "host": HOST, "tls": {"certManager": ISSUER}},
            ["spec.ingress.tls.secretName", "ingress.tls.secretName is required"],
        ),
        (
            {"enabled": True, "host": HOST, "className": "nginx", "gatewayRef": {"name": "edge"}},
            ["spec.ingress.gatewayRef", "not both"],
        ),
        ({"enabled": True, "host": "Not A Host!"}, ["spec.ingress.host"]),
        (
            {
                "enabled": True,
                "host": HOST,
                "tls": {"secretName": "t", "certManager": {"issuerRef": {"name": "x", "kind": "Vault"}}},
            },
            ["spec.ingress.tls.certManager.issuerRef.kind", "Issuer", "ClusterIssuer"],
        ),
        ({"enabled": True, "host": HOST, "gatewayRef": {}}, ["spec.ingress.gatewayRef.name", "Required"]),
        ({"enabled": "yes"}, ["spec.ingress.enabled"]),
    ],
)
def test_garbage_ingress_is_refused_by_the_api_server(
    kubectl: Kubectl, namespace: str, ingress: dict[str, Any], expected: list[str]
) -> None:
    result = kubectl(
        "-n", namespace, "apply", "--dry-run=server", "-f", "-",
        input=json.dumps(platform_manifest("bad", {"ingress": ingress})), check=False,
    )  # fmt: skip
    output = result.stderr + result.stdout
    assert result.returncode != 0, f"{ingress} was accepted"
    for text in expected:
        assert text in output, f"{ingress}: {text!r} not in {output}"
