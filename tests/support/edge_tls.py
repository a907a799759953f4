"""TLS at the platform's public door on the real node, without an ingress controller.

What a cluster's ingress controller (or Gateway) does with `spec.ingress`, done by the smallest real thing: the
testbox program's `tlsproxy` mode (tests/cluster/go/testbox, Go's httputil.ReverseProxy, which forwards WebSocket
upgrades) runs as a pod behind its own Service, terminates TLS with the very kubernetes.io/tls Secret the platform's
`spec.ingress.tls.secretName` names, and routes as the operator's Ingresses do: `/socket.io` to the websocket Service,
the rest to the gateway's. The certificate is signed by a CA made here, for the public host and the proxy Service's
ClusterIP (what the host's clients dial), so that a client trusting the CA connects and one that does not is refused.

The Service and the Secret are created right after the platform's namespace (`prepare`), before the platform is
applied: the operator reports a missing certificate Secret as a problem, and the README's `kubectl wait` would wait
for it.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.cluster.real_node import RealNode

HOST = "api.venta.test"
SECRET = "venta-public-tls"
PROXY = "venta-tls-proxy"
PORT = 8443
SOCKET_IO_PATH = "/socket.io"


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def issue(directory: Path, host: str, ip: str) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate it signs for `host` and `ip`: (ca.crt, tls.crt, tls.key) in `directory`."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "venta test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(host), x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / "ca.crt", directory / "tls.crt", directory / "tls.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(_pem_key(key))
    return paths


@dataclass
class TlsEdge:
    """The certificate Secret, the proxy Service and (once the platform runs) the proxy pod, in one namespace."""

    node: RealNode
    namespace: str
    directory: Path
    platform: str = "venta"
    ip: str = ""
    ca: Path = field(default_factory=Path)

    @property
    def url(self) -> str:
        return f"https://{self.ip}:{PORT}"

    def ingress_spec(self) -> dict[str, Any]:
        """What the example's `spec.ingress` says: the host, and the Secret its certificate is in."""
        return {"enabled": True, "host": HOST, "tls": {"secretName": SECRET}}

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return self.node.kubectl("-n", self.namespace, *args, input=input).stdout

    def prepare(self) -> None:
        """The proxy's Service (its ClusterIP goes into the certificate), then the kubernetes.io/tls Secret."""
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": PROXY},
            "spec": {
                "selector": {"app": PROXY},
                "ports": [{"name": "https", "port": PORT, "targetPort": PORT, "protocol": "TCP"}],
            },
        }
        self.kubectl("apply", "-f", "-", input=json.dumps(service))
        self.ip = json.loads(self.kubectl("get", "service", PROXY, "-o", "json"))["spec"]["clusterIP"]
        self.ca, crt, key = issue(self.directory, HOST, self.ip)
        self.kubectl("create", "secret", "tls", SECRET, f"--cert={crt}", f"--key={key}")

    def deploy_proxy(self, image: str) -> None:
        """The proxy pod, hardened for the namespace's `restricted` Pod Security Standard, mounting the Secret."""
        svc = f"{self.namespace}.svc"
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": PROXY, "labels": {"app": PROXY}},
            "spec": {
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 65534,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {
                        "name": "proxy",
                        "image": image,
                        "imagePullPolicy": "Never",
                        "args": [
                            "tlsproxy",
                            str(PORT),
                            "/tls/tls.crt",
                            "/tls/tls.key",
                            f"http://{self.platform}-gateway.{svc}:5002",
                            f"{SOCKET_IO_PATH}=http://{self.platform}-websocket.{svc}:5004",
                        ],
                        "ports": [{"containerPort": PORT, "protocol": "TCP"}],
                        # through the proxy to the gateway (the kubelet does not check the certificate); a TCP
                        # probe would leave a "TLS handshake error" in the proxy's log every period
                        "readinessProbe": {
                            "httpGet": {"scheme": "HTTPS", "port": PORT, "path": "/health"},
                            "periodSeconds": 2,
                        },
                        "resources": {
                            "requests": {"cpu": "10m", "memory": "16Mi"},
                            "limits": {"cpu": "500m", "memory": "64Mi"},
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "volumeMounts": [{"name": "tls", "mountPath": "/tls", "readOnly": True}],
                    }
                ],
                "volumes": [{"name": "tls", "secret": {"secretName": SECRET}}],
            },
        }
        self.kubectl("apply", "-f", "-", input=json.dumps(pod))
        self.kubectl("wait", "--for=condition=Ready", f"pod/{PROXY}", "--timeout=120s")
        # Ready is not yet routable: until kube-proxy has written the Service's new endpoint into iptables, its
        # ClusterIP rejects connections (the rule of a Service without endpoints), which a busy node takes seconds.
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection((self.ip, PORT), timeout=2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def trusting(self) -> ssl.SSLContext:
        """A client context that trusts the test CA (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.ca))
