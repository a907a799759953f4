"""The API server refuses bad VentaPlatforms, naming the field: the CRD's schema and CEL rules at work."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.kwok import Kubectl
from tests.support.operator_e2e import wait_for
from venta_operator.crd import build_crd

pytestmark = pytest.mark.cluster

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"
SECRET = {"name": "s", "key": "k"}

# (case id, spec to merge over {"version": "1"}, what the error must say)
CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("negative-replicas", {"services": {"gateway": {"replicas": -1}}}, ["spec.services.gateway.replicas"]),
    ("too-many-replicas", {"services": {"users": {"replicas": 1000}}}, ["spec.services.users.replicas"]),
    (
        "autoscaling-min-above-max",
        {"services": {"users": {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}}},
        ["spec.services.users.autoscaling.minReplicas", "less than or equal to autoscaling.maxReplicas"],
    ),
    (
        "nats-managed-and-external",
        {"nats": {"managed": {}, "external": {"url": "nats://n:4222"}}},
        ["spec.nats", "exactly one of nats.managed or nats.external"],
    ),
    (
        "postgres-neither",
        {"postgres": {}},
        ["spec.postgres", "exactly one of postgres.managed, postgres.external or postgres.cloudNativePG"],
    ),
    (
        "postgres-external-without-secret",
        {"postgres": {"external": {"host": "db.example"}}},
        ["spec.postgres.external.credentialsSecretRef", "Required value"],
    ),
    (
        "algolia-without-secret",
        {"search": {"provider": "algolia", "algolia": {"appId": "A"}}},
        ["spec.search.algolia", "apiKeySecretRef are required when provider is algolia"],
    ),
    ("clerk-without-secrets", {"identity": {"mode": "clerk"}}, ["spec.identity.clerk", "required when mode is clerk"]),
    ("unknown-provider", {"search": {"provider": "elasticsearch"}}, ["spec.search.provider", "Unsupported value"]),
    ("bad-schedule", {"search": {"reindexSchedule": "every night"}}, ["spec.search.reindexSchedule", "cron schedule"]),
    ("unknown-events-provider", {"events": {"provider": "kafka"}}, ["spec.events.provider", "Unsupported value"]),
    (
        "redis-events-with-the-reindex",
        {"events": {"provider": "redis"}},
        ["spec.events.provider", "needs search.reindexSchedule '' and search.reindexOnCreate false"],
    ),
    (
        "bad-quantity",
        {"services": {"vendors": {"resources": {"limits": {"memory": "lots"}}}}},
        ["spec.services.vendors.resources.limits.memory", "Kubernetes quantity"],
    ),
    (
        "requests-above-limits",
        {"services": {"vendors": {"resources": {"requests": {"cpu": "4"}}}}},
        ["spec.services.vendors.resources.requests.cpu", "must not exceed limits.cpu"],
    ),
    (
        "credentials-in-redis-url",
        {"redis": {"external": {"url": "redis://:hunter2@cache:6379/0"}}},
        ["spec.redis.external.url", "passwordSecretRef"],
    ),
    ("unknown-log-level", {"observability": {"logLevel": "CHATTY"}}, ["spec.observability.logLevel"]),
    (
        "sampling-above-one",
        {"observability": {"tracing": {"samplingRatio": 2}}},
        ["spec.observability.tracing.samplingRatio"],
    ),
    ("bad-rate-limit", {"resilience": {"rateLimit": "lots"}}, ["spec.resilience.rateLimit"]),
    (
        "secret-ref-without-key",
        {"search": {"provider": "algolia", "algolia": {"appId": "A", "apiKeySecretRef": {"name": "s"}}}},
        ["spec.search.algolia.apiKeySecretRef.key"],
    ),
    (
        "trusted-proxy-not-an-address",
        {"network": {"trustedProxies": ["10.0.0.0/8", "the ingress"]}},
        ["spec.network.trustedProxies[1]", "IP address or a CIDR"],
    ),
    (
        "trusted-proxy-bad-cidr",
        {"network": {"trustedProxies": ["10.0.0.0/33"]}},
        ["spec.network.trustedProxies[0]", "IP address or a CIDR"],
    ),
    (
        "trusted-proxies-repeated",
        {"network": {"trustedProxies": ["10.0.0.1", "10.0.0.1"]}},
        ["spec.network.trustedProxies[1]", "Duplicate value"],
    ),
    (
        "uploads-cloudinary-and-claim",
        {"uploads": {"cloudinary": {"urlSecretRef": SECRET}, "existingClaim": "c"}},
        ["spec.uploads.existingClaim", "not both"],
    ),
    (
        "uploads-cloudinary-without-secret",
        {"uploads": {"cloudinary": {"folder": "x"}}},
        ["spec.uploads.cloudinary.urlSecretRef", "Required value"],
    ),
    (
        "uploads-public-url-not-http",
        {"uploads": {"publicBaseUrl": "ftp://files.example"}},
        ["spec.uploads.publicBaseUrl"],
    ),
    ("uploads-claim-bad-name", {"uploads": {"existingClaim": "Not A Name"}}, ["spec.uploads.existingClaim"]),
    ("image-repository-with-tag", {"image": {"repository": "venta/venta:1.0"}}, ["spec.image.repository"]),
    ("image-repository-with-digest", {"image": {"repository": "venta@sha256:00"}}, ["spec.image.repository"]),
    ("image-tag-with-space", {"image": {"tag": "dev build"}}, ["spec.image.tag"]),
    ("live-reload-not-a-boolean", {"development": {"liveReload": "yes"}}, ["spec.development.liveReload"]),
    ("grpc-tls-without-secret", {"network": {"grpcTLS": {}}}, ["spec.network.grpcTLS.secretName", "Required value"]),
    ("grpc-tls-bad-secret-name", {"network": {"grpcTLS": {"secretName": "Not_A_Name"}}}, ["spec.network.grpcTLS"]),
    (
        "grpc-tls-bad-server-name",
        {"network": {"grpcTLS": {"secretName": "tls", "serverName": "no spaces/here"}}},
        ["spec.network.grpcTLS.serverName"],
    ),
    ("grpc-tls-not-an-object", {"network": {"grpcTLS": "venta-tls"}}, ["spec.network.grpcTLS"]),
]


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def dry_run(kubectl: Kubectl, namespace: str, manifest: dict[str, Any]) -> tuple[int, str]:
    result = kubectl("-n", namespace, "apply", "--dry-run=server", "-f", "-", input=json.dumps(manifest), check=False)
    return result.returncode, result.stderr + result.stdout


def platform(spec: dict[str, Any], name: str = "bad") -> dict[str, Any]:
    return {
        "apiVersion": "venta.io/v1alpha1",
        "kind": "VentaPlatform",
        "metadata": {"name": name},
        "spec": merge({"version": "1"}, spec),
    }


@pytest.mark.parametrize("case, spec, expected", CASES, ids=[c[0] for c in CASES])
def test_invalid_platform_is_rejected_naming_the_field(
    kubectl: Kubectl, namespace: str, case: str, spec: dict[str, Any], expected: list[str]
) -> None:
    code, output = dry_run(kubectl, namespace, platform(spec))
    assert code != 0, f"{case} was accepted"
    for text in expected:
        assert text in output, f"{case}: {text!r} not in {output}"


def test_missing_version_is_rejected(kubectl: Kubectl, namespace: str) -> None:
    manifest = platform({})
    del manifest["spec"]["version"]
    code, output = dry_run(kubectl, namespace, manifest)
    assert code != 0 and "spec.version: Required value" in output


def test_long_name_is_rejected(kubectl: Kubectl, namespace: str) -> None:
    code, output = dry_run(kubectl, namespace, platform({}, name="a" * 41))
    assert code != 0 and "metadata.name must be at most 40 characters" in output


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_are_accepted(kubectl: Kubectl, namespace: str, path: Path) -> None:
    code, output = dry_run(kubectl, namespace, yaml.safe_load(path.read_text()))
    assert code == 0, output


def test_defaults_are_applied_by_the_api_server(kubectl: Kubectl, namespace: str) -> None:
    result = kubectl(
        "-n",
        namespace,
        "apply",
        "--dry-run=server",
        "-o",
        "json",
        "-f",
        "-",
        input=json.dumps(platform({}, name="defaults")),
    )
    spec = json.loads(result.stdout)["spec"]
    assert spec["services"]["gateway"]["replicas"] == 2
    assert spec["postgres"]["managed"]["storage"]["size"] == "5Gi"
    assert spec["search"]["reindexSchedule"] == "0 3 * * *"
    assert spec["identity"]["mode"] == "local"


def object_paths(schema: dict[str, Any], path: str = "vp") -> list[str]:
    """`kubectl explain` paths of every object in the schema that has fields of its own."""
    out = [path] if schema.get("properties") else []
    for name, sub in schema.get("properties", {}).items():
        out += object_paths(sub, f"{path}.{name}")
    return out


def test_kubectl_explain_documents_every_level(kubectl: Kubectl, namespace: str) -> None:
    """What the API server publishes for the CRD says what each field is, at every depth (`kubectl explain` once
    printed `<no description>` below the top level)."""
    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    paths = object_paths(schema)
    assert "vp.spec.nats.managed" in paths and len(paths) > 40
    # The API server publishes a CRD's OpenAPI a moment after the CRD is established.
    wait_for(
        lambda: "Run by the operator" in kubectl("explain", "vp.spec.nats.managed", check=False).stdout,
        timeout=60,
        what="the CRD's OpenAPI to be published",
    )
    for path in paths:
        out = kubectl("explain", path).stdout
        assert "<no description>" not in out, f"kubectl explain {path}:\n{out}"
