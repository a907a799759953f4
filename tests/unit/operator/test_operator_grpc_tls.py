"""`spec.network.grpcTLS`: every pod that serves or calls gRPC mounts the Secret read-only and is told where the
files are; nothing else does; probes stay HTTP (the kubelet's gRPC probes cannot present a client certificate);
the Secret's keys are checked like every other referenced Secret; the admin token of the local issuer is generated."""

from __future__ import annotations

from typing import Any

from tests.support.operator_plans import env_of, full_plan, make, pod_specs
from venta_operator.builders.grpc_tls import GRPC_TLS_DIR
from venta_operator.plan import generated_secret
from venta_operator.reconciler import referenced_secrets
from venta_operator.spec import SecretKeyRef

TLS = {"network": {"grpcTLS": {"secretName": "venta-grpc-tls"}}}
# serve gRPC (users, location, vendors) or call it (the edges, notifications, the local issuer, the re-index)
SPEAKING = {"users", "location", "vendors", "gateway", "websocket", "notifications", "identity", "reindex"}


def _venta_containers(spec: dict[str, Any]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """component -> (pod spec, container) of every workload running the Venta image."""
    out = {}
    for _, pod in pod_specs(full_plan(make(spec)).apply):
        for container in pod["containers"]:
            if (container.get("command") or [""])[0] == "venta":
                out[container["name"]] = (pod, container)
    return out


def test_every_grpc_pod_mounts_the_secret_read_only_and_reads_it() -> None:
    workloads = _venta_containers(TLS)
    assert set(workloads) >= SPEAKING
    for name, (pod, container) in workloads.items():
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        env = env_of(container)
        if name not in SPEAKING:  # search sync, the migration: no gRPC, no certificate
            assert "grpc-tls" not in volumes and not any(k.startswith("VENTA_GRPC_TLS") for k in env), name
            continue
        assert volumes["grpc-tls"]["secret"] == {
            "secretName": "venta-grpc-tls",
            "defaultMode": 0o440,
            "items": [{"key": k, "path": k} for k in ("tls.crt", "tls.key", "ca.crt")],
        }, name
        assert mounts["grpc-tls"] == {"name": "grpc-tls", "mountPath": GRPC_TLS_DIR, "readOnly": True}, name
        assert env["VENTA_GRPC_TLS_CERT_FILE"] == f"{GRPC_TLS_DIR}/tls.crt", name
        assert env["VENTA_GRPC_TLS_KEY_FILE"] == f"{GRPC_TLS_DIR}/tls.key", name
        assert env["VENTA_GRPC_TLS_CA_FILE"] == f"{GRPC_TLS_DIR}/ca.crt", name
        assert "VENTA_GRPC_TLS_SERVER_NAME" not in env, name
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if probe in container:
                assert "grpc" not in container[probe] and container[probe]["httpGet"]["port"] == "http", name


def test_without_grpc_tls_nothing_is_mounted_and_the_server_name_is_passed_when_set() -> None:
    for name, (pod, container) in _venta_containers({}).items():
        assert "grpc-tls" not in {v["name"] for v in pod["volumes"]}, name
        assert not any(k.startswith("VENTA_GRPC_TLS") for k in env_of(container)), name
    named = {"network": {"grpcTLS": {"secretName": "venta-grpc-tls", "serverName": "venta-grpc.internal"}}}
    _, gateway = _venta_containers(named)["gateway"]
    assert env_of(gateway)["VENTA_GRPC_TLS_SERVER_NAME"] == "venta-grpc.internal"


def test_the_secret_is_checked_like_the_other_referenced_secrets() -> None:
    refs = referenced_secrets(make(TLS))
    assert [r for r in refs if r.name == "venta-grpc-tls"] == [
        SecretKeyRef(name="venta-grpc-tls", key=k) for k in ("tls.crt", "tls.key", "ca.crt")
    ]
    assert not [r for r in referenced_secrets(make()) if r.name == "venta-grpc-tls"]


def test_the_local_issuers_admin_token_is_a_generated_secret_owned_by_the_platform() -> None:
    p = make()
    secret = generated_secret(p, "demo-identity-admin", {"token": "t" * 32}, "uid-1")
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    _, identity = _venta_containers({})["identity"]
    env = env_of(identity)
    assert env["VENTA_IDENTITY_ADMIN_TOKEN"] == {"secretKeyRef": {"name": "demo-identity-admin", "key": "token"}}
    assert env["VENTA_IDENTITY_REQUIRE_ADMIN_TOKEN"] == "true"
