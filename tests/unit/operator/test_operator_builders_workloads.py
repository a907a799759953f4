"""Workload builders: every pod is hardened, every service runs its command on its ports with the right settings."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.operator_plans import ALGOLIA, CLERK, EXTERNAL, by_key, env_of, full_plan, make, pod_specs
from venta_operator.builders.configmap import config_checksum, settings
from venta_operator.builders.deployment import component_deployment
from venta_operator.builders.job import migration_job, migration_job_name
from venta_operator.components import APP_COMPONENTS, GATEWAY, SEARCH_SYNC, USERS, WEBSOCKET
from venta_operator.naming import ANNOTATION_CONFIG_CHECKSUM

VARIANTS = {
    "minimal": {},
    "production": "PROD",
    "autoscaled": {"services": {"gateway": {"autoscaling": {"enabled": True}}}},
}


def variant(name: str) -> Any:
    spec = VARIANTS[name]
    if spec == "PROD":
        spec = {**EXTERNAL, "search": ALGOLIA, "identity": CLERK}
    return make(spec)


@pytest.mark.parametrize("name", VARIANTS)
def test_every_container_is_hardened(name: str) -> None:
    plan = full_plan(variant(name))
    pods = list(pod_specs(plan.apply))
    assert len(pods) >= 8
    for where, pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert pod["automountServiceAccountToken"] is False, where
        assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"], where
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert set(c["resources"]) == {"requests", "limits"}, where
            assert {"cpu", "memory", "ephemeral-storage"} <= set(c["resources"]["limits"]), where
            if "livenessProbe" in c:
                assert c["livenessProbe"] != c["readinessProbe"], where
            assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"], where
            if not where.startswith(("Job/", "CronJob/")):
                assert "livenessProbe" in c and "readinessProbe" in c, where


@pytest.mark.parametrize("name", VARIANTS)
def test_no_secret_value_is_ever_in_a_pod_or_configmap(name: str) -> None:
    plan = full_plan(variant(name))
    for where, pod in pod_specs(plan.apply):
        for c in pod["containers"]:
            for key, value in env_of(c).items():
                if any(word in key for word in ("PASSWORD", "SECRET", "API_KEY")):
                    assert isinstance(value, dict) and "secretKeyRef" in value, f"{where} {key}"
    config = by_key(plan.apply)[("ConfigMap", "demo-config")]["data"]
    assert not [k for k in config if "PASSWORD" in k or "SECRET" in k or "API_KEY" in k]


@pytest.mark.parametrize("component", APP_COMPONENTS, ids=lambda c: c.name)
def test_service_container_runs_its_command_on_its_ports(component: Any) -> None:
    dep = component_deployment(make(), component)
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "venta/venta:1.2.3"
    assert c["command"] == ["venta", "serve", component.name]
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == component.ports
    assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert c["envFrom"] == [{"configMapRef": {"name": "demo-config"}}]
    env = env_of(c)
    assert env["VENTA_HTTP_PORT"] == str(component.http_port)
    assert env["OTEL_SERVICE_NAME"] == f"venta-{component.name}"
    if component.database:
        assert env["VENTA_DB_NAME"] == component.database
        assert env["VENTA_DB_PASSWORD"] == {"secretKeyRef": {"name": "demo-postgres-credentials", "key": "password"}}


def test_ports_follow_the_runtime_contract() -> None:
    assert (USERS.grpc_port, USERS.http_port) == (5000, 9000)
    assert (GATEWAY.http_port, WEBSOCKET.http_port, SEARCH_SYNC.http_port) == (5002, 5004, 5006)


def test_settings_change_rolls_pods_through_the_checksum() -> None:
    before, after = make(), make({"observability": {"logLevel": "DEBUG"}})
    assert config_checksum(before) != config_checksum(after)
    annotations = component_deployment(after, USERS)["spec"]["template"]["metadata"]["annotations"]
    assert annotations[ANNOTATION_CONFIG_CHECKSUM] == config_checksum(after)
    same = make({"services": {"users": {"replicas": 3}}})
    assert config_checksum(same) == config_checksum(before)


def test_settings_carry_the_contract() -> None:
    data = settings(make())
    assert data["VENTA_NATS_URL"] == "nats://demo-nats.shop.svc:4222"
    assert data["VENTA_REDIS_URL"] == "redis://demo-redis.shop.svc:6379/0"
    assert data["VENTA_DB_HOST"] == "demo-postgres.shop.svc" and data["VENTA_DB_PORT"] == "5432"
    assert data["VENTA_USERS_ADDR"] == "dns:///demo-users-headless.shop.svc:5000"  # every ready replica
    assert data["VENTA_VENDORS_ADDR"] == "dns:///demo-vendors-headless.shop.svc:5005"
    assert data["VENTA_LOCATION_ADDR"] == "dns:///demo-location-headless.shop.svc:5001"
    assert data["VENTA_BREAKER_RESET_TIMEOUT_S"] == "30" and data["VENTA_GRPC_TIMEOUT_S"] == "5"
    assert data["VENTA_AUTH_JWKS_URL"] == "http://demo-identity.shop.svc:5010/.well-known/jwks.json"
    assert data["VENTA_AUTH_ISSUER"] == data["VENTA_IDENTITY_ISSUER"] == "http://demo-identity.shop.svc:5010"
    assert data["OTEL_SDK_DISABLED"] == "true"
    traced = settings(make({"observability": {"tracing": {"endpoint": "http://otel:4317", "samplingRatio": 0.25}}}))
    assert traced["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
    assert traced["OTEL_TRACES_SAMPLER_ARG"] == "0.25"


def test_external_stores_use_the_users_secrets() -> None:
    p = make({**EXTERNAL, "search": ALGOLIA, "identity": CLERK})
    data = settings(p)
    assert data["VENTA_DB_HOST"] == "db.example" and data["VENTA_NATS_URL"] == "nats://nats.example:4222"
    assert data["VENTA_ALGOLIA_APP_ID"] == "APP" and data["VENTA_AUTH_ISSUER"] == "https://clerk.example"
    gateway = env_of(component_deployment(p, GATEWAY)["spec"]["template"]["spec"]["containers"][0])
    assert gateway["VENTA_REDIS_PASSWORD"] == {"secretKeyRef": {"name": "rd", "key": "pw"}}
    assert gateway["VENTA_ALGOLIA_API_KEY"] == {"secretKeyRef": {"name": "algolia", "key": "k"}}
    assert gateway["VENTA_CLERK_WEBHOOK_SECRET"] == {"secretKeyRef": {"name": "clerk", "key": "webhook"}}
    assert gateway["VENTA_REVENUECAT_WEBHOOK_SECRET"] == {"secretKeyRef": {"name": "rc", "key": "secret"}}
    assert "VENTA_DB_NAME" not in gateway  # algolia: the gateway does not read the self-hosted index
    users = env_of(component_deployment(p, USERS)["spec"]["template"]["spec"]["containers"][0])
    assert users["VENTA_DB_USER"] == {"secretKeyRef": {"name": "pg", "key": "username"}}
    plan = full_plan(p)
    assert not [k for k in by_key(plan.apply) if k[0] == "StatefulSet"]
    assert plan.secrets == []


def test_autoscaling_hands_replicas_to_the_hpa() -> None:
    p = make({"services": {"gateway": {"replicas": 4, "autoscaling": {"enabled": True, "minReplicas": 3}}}})
    assert "replicas" not in component_deployment(p, GATEWAY)["spec"]
    hpa = by_key(full_plan(p).apply)[("HorizontalPodAutoscaler", "demo-gateway")]
    assert hpa["spec"]["minReplicas"] == 3 and hpa["spec"]["maxReplicas"] == 10
    assert hpa["spec"]["scaleTargetRef"]["name"] == "demo-gateway"


def test_migration_job_is_named_by_what_it_runs() -> None:
    a, b = make(), make({"version": "1.2.4"})
    assert migration_job_name(a) != migration_job_name(b)
    assert migration_job_name(a) == migration_job_name(make({"services": {"users": {"replicas": 5}}}))
    job = migration_job(a)
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["containers"][0]["command"] == ["venta", "migrate", "--all"]
    assert len(job["metadata"]["name"]) <= 63


def test_local_identity_runs_only_in_local_mode() -> None:
    local = by_key(full_plan(make()).apply)
    clerk = by_key(full_plan(make({"identity": CLERK})).apply)
    assert ("Deployment", "demo-identity") in local and ("Service", "demo-identity") in local
    assert ("Deployment", "demo-identity") not in clerk


def test_builders_are_deterministic() -> None:
    assert full_plan(make()).apply == full_plan(make()).apply
