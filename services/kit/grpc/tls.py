"""Mutual TLS of internal gRPC: the one place that turns the TLS settings into server and channel credentials.

Every gRPC server of the kit (`GrpcServiceHost`) and every peer client (`PeerClient`) takes a `GrpcTls` or None
(plaintext, local mode and tests). With TLS, a server accepts only clients presenting a certificate signed by the CA,
and a client accepts only servers presenting one; both present the same certificate (in a cluster, the Secret of
`spec.network.grpcTLS`, e.g. one cert-manager issues for `*.<namespace>.svc` with server and client usages).

Channels keep their `dns:///` targets and round robin over every replica: TLS is per connection, the name checked
is the target's host (or `server_name` for a certificate issued for one name), never a pod address.
The HTTP side port (`/health`, `/metrics`) stays plaintext, so the kubelet's probes and Prometheus need no
certificate. Files are read once, at start-up; this module must never read them per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc


class TlsSettings(Protocol):
    @property
    def grpc_tls_cert_file(self) -> Path | None: ...
    @property
    def grpc_tls_key_file(self) -> Path | None: ...
    @property
    def grpc_tls_ca_file(self) -> Path | None: ...
    @property
    def grpc_tls_server_name(self) -> str | None: ...


@dataclass(frozen=True, repr=False)
class GrpcTls:
    certificate_chain: bytes
    private_key: bytes
    root_certificates: bytes
    server_name: str | None = None

    def __repr__(self) -> str:  # never the key
        return f"GrpcTls(server_name={self.server_name!r})"

    @classmethod
    def from_settings(cls, settings: TlsSettings) -> GrpcTls | None:
        """The settings' certificate, key and CA, read now; None when TLS is not configured."""
        cert, key, ca = settings.grpc_tls_cert_file, settings.grpc_tls_key_file, settings.grpc_tls_ca_file
        if cert is None or key is None or ca is None:
            return None
        return cls(cert.read_bytes(), key.read_bytes(), ca.read_bytes(), settings.grpc_tls_server_name)

    def server_credentials(self) -> grpc.ServerCredentials:
        """Mutual TLS: the server's certificate, and clients must present one signed by the CA."""
        return grpc.ssl_server_credentials(
            [(self.private_key, self.certificate_chain)],
            root_certificates=self.root_certificates,
            require_client_auth=True,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Trust only the CA; present this process's certificate to the server."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )

    def channel_options(self) -> list[tuple[str, Any]]:
        return [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []
