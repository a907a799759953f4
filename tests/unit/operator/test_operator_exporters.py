"""The data stores' exporters: sidecars of the managed stores, Deployments for the external ones, their `metrics`
ports, ServiceMonitor, NetworkPolicy rules, and the stores' alerts in the PrometheusRule only when they run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.operator_plans import by_key, env_of, full_plan, make, pod_specs
from venta_operator.builders.deployment import redis_deployment
from venta_operator.builders.exporters import external_exporters
from venta_operator.builders.monitoring import OPTIONAL_KINDS, monitoring
from venta_operator.builders.networkpolicy import network_policies
from venta_operator.builders.pods import container_security
from venta_operator.builders.secret import POSTGRES_ADMIN_PASSWORD_KEY as ADMIN_KEY
from venta_operator.builders.service import services
from venta_operator.builders.statefulset import nats_statefulset, postgres_statefulset
from venta_operator.config import load_alert_rules
from venta_operator.spec import SpecError, parse_spec

RULES = Path(__file__).resolve().parents[3] / "observability" / "rules"
ON: dict[str, Any] = {"observability": {"exporters": {"enabled": True}}}
EXTERNAL: dict[str, Any] = {
    "nats": {"external": {"url": "nats://nats.example:4222"}},
    "postgres": {"external": {"host": "db.example", "credentialsSecretRef": {"name": "db"}}},
    "redis": {"external": {"url": "rediss://cache.example:6380/0", "passwordSecretRef": {"name": "r", "key": "pw"}}},
}


def containers(workload: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    assert workload is not None
    return {c["name"]: c for c in workload["spec"]["template"]["spec"]["containers"]}


def metrics_ports(p_services: list[dict[str, Any]]) -> dict[str, int]:
    return {
        s["metadata"]["name"]: port["port"]
        for s in p_services
        if s["kind"] == "Service"
        for port in s["spec"]["ports"]
        if port["name"] == "metrics"
    }


def test_off_by_default_no_sidecar_no_port_no_deployment() -> None:
    p = make()
    assert set(containers(nats_statefulset(p))) == {"nats"}
    assert set(containers(postgres_statefulset(p))) == {"postgres"}
    assert set(containers(redis_deployment(p))) == {"redis"}
    assert metrics_ports(services(p)) == {}
    assert external_exporters(make(EXTERNAL)) == []


def test_managed_stores_get_a_sidecar_reading_localhost() -> None:
    p = make(ON)
    pg = containers(postgres_statefulset(p))["postgres-exporter"]
    assert pg["image"] == "prometheuscommunity/postgres-exporter:v0.17.1"
    env = env_of(pg)
    assert env["DATA_SOURCE_URI"] == "127.0.0.1:5432/postgres?sslmode=disable"
    assert env["DATA_SOURCE_USER"] == "postgres"
    assert env["DATA_SOURCE_PASS"]["secretKeyRef"] == {"name": "demo-postgres-credentials", "key": ADMIN_KEY}
    nats = containers(nats_statefulset(p))["nats-exporter"]
    assert nats["image"] == "natsio/prometheus-nats-exporter:0.17.3"
    assert nats["args"][-1] == "http://127.0.0.1:8222"
    assert {"-varz", "-connz", "-routez", "-jsz=all"} <= set(nats["args"])
    redis = containers(redis_deployment(p))["redis-exporter"]
    assert redis["image"] == "oliver006/redis_exporter:v1.74.0"
    assert env_of(redis)["REDIS_ADDR"] == "redis://127.0.0.1:6379"
    assert env_of(redis)["REDIS_PASSWORD"]["secretKeyRef"]["name"] == "demo-redis-credentials"
    for exporter in (pg, nats, redis):
        assert exporter["ports"][0]["name"] == "metrics"
        assert exporter["readinessProbe"] and exporter["livenessProbe"]
        assert exporter["securityContext"] == container_security()
        resources = exporter["resources"]
        assert resources["requests"]["memory"] == "32Mi" and resources["limits"]["memory"] == "128Mi"
        assert "ephemeral-storage" in resources["limits"]


def test_images_and_resources_come_from_the_spec() -> None:
    p = make(
        {
            "observability": {
                "exporters": {
                    "enabled": True,
                    "redis": {"image": "mirror.example/redis_exporter:v1", "resources": {"limits": {"memory": "1Gi"}}},
                }
            }
        }
    )
    redis = containers(redis_deployment(p))["redis-exporter"]
    assert redis["image"] == "mirror.example/redis_exporter:v1" and redis["resources"]["limits"]["memory"] == "1Gi"


def test_the_managed_stores_services_name_the_metrics_port_once() -> None:
    ports = metrics_ports(services(make(ON)))
    # the client Service only: with the headless one too, every store pod would be scraped twice
    assert ports == {"demo-nats": 7777, "demo-postgres": 9187, "demo-redis": 9121}


def test_external_stores_get_an_exporter_deployment_and_service() -> None:
    p = make({**EXTERNAL, **ON})
    made = by_key(external_exporters(p))
    assert set(made) == {
        ("Deployment", "demo-postgres-exporter"),
        ("Service", "demo-postgres-exporter"),
        ("Deployment", "demo-redis-exporter"),
        ("Service", "demo-redis-exporter"),
    }  # an external NATS without monitorUrl has none
    pg = containers(made[("Deployment", "demo-postgres-exporter")])["postgres-exporter"]
    env = env_of(pg)
    assert env["DATA_SOURCE_URI"] == "db.example:5432/postgres?sslmode=prefer"
    assert env["DATA_SOURCE_USER"]["secretKeyRef"] == {"name": "db", "key": "username"}
    assert env["DATA_SOURCE_PASS"]["secretKeyRef"] == {"name": "db", "key": "password"}
    redis = containers(made[("Deployment", "demo-redis-exporter")])["redis-exporter"]
    assert env_of(redis)["REDIS_ADDR"] == "rediss://cache.example:6380/0"
    assert env_of(redis)["REDIS_PASSWORD"]["secretKeyRef"] == {"name": "r", "key": "pw"}
    assert metrics_ports(list(made.values())) == {"demo-postgres-exporter": 9187, "demo-redis-exporter": 9121}
    plan = full_plan(p)
    assert {("Deployment", "demo-postgres-exporter"), ("Service", "demo-redis-exporter")} <= set(by_key(plan.apply))
    for _, pod in pod_specs(list(made.values())):
        assert pod["automountServiceAccountToken"] is False and pod["securityContext"]["runAsNonRoot"]


def test_external_nats_gets_an_exporter_only_with_its_monitor_url() -> None:
    spec = {**EXTERNAL, "observability": {"exporters": {"enabled": True, "nats": {"monitorUrl": "http://nats:8222"}}}}
    made = by_key(external_exporters(make(spec)))
    nats = containers(made[("Deployment", "demo-nats-exporter")])["nats-exporter"]
    assert nats["args"][-1] == "http://nats:8222"


def test_cloudnativepg_primary_gets_an_exporter_with_the_app_credentials() -> None:
    spec = {**ON, "postgres": {"cloudNativePG": {}}}
    made = by_key(external_exporters(make(spec)))
    env = env_of(containers(made[("Deployment", "demo-postgres-exporter")])["postgres-exporter"])
    assert env["DATA_SOURCE_URI"] == "demo-postgres-rw:5432/postgres?sslmode=prefer"
    assert env["DATA_SOURCE_USER"]["secretKeyRef"] == {"name": "demo-postgres-app", "key": "username"}
    assert env["DATA_SOURCE_PASS"]["secretKeyRef"] == {"name": "demo-postgres-app", "key": "password"}


def test_network_policies_open_the_exporter_ports_to_prometheus_only() -> None:
    spec = {**ON, "networkPolicy": {"enabled": True, "metricsNamespaceLabels": {"name": "monitoring"}}}
    policies = by_key(network_policies(make(spec)))
    for store, port in (("postgres", 9187), ("redis", 9121), ("nats", 7777)):
        rules = policies[("NetworkPolicy", f"demo-{store}")]["spec"]["ingress"]
        scrape = [r for r in rules if {"protocol": "TCP", "port": port} in r["ports"]]
        assert scrape == [
            {"from": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}], "ports": [scrape[0]["ports"][0]]}
        ]
    external = by_key(network_policies(make({**EXTERNAL, **spec})))
    rules = external[("NetworkPolicy", "demo-redis-exporter")]["spec"]["ingress"]
    assert rules == [
        {
            "from": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}],
            "ports": [{"protocol": "TCP", "port": 9121}],
        }
    ]


def test_stores_service_monitor_scrapes_the_metrics_ports_when_served() -> None:
    p = make(ON)
    made = by_key(monitoring(p, OPTIONAL_KINDS))
    stores = made[("ServiceMonitor", "demo-stores")]
    assert stores["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s"}]
    assert stores["spec"]["namespaceSelector"] == {"matchNames": ["shop"]}
    assert ("ServiceMonitor", "demo-stores") not in by_key(monitoring(make(), OPTIONAL_KINDS))
    assert monitoring(p, frozenset()) == []


def test_store_alerts_join_the_prometheus_rule_only_with_exporters() -> None:
    groups = load_alert_rules(RULES / "venta-platform.yaml") + load_alert_rules(RULES / "venta-stores.yaml")

    def group_names(spec: dict[str, Any] | None) -> list[str]:
        rule = by_key(monitoring(make(spec), OPTIONAL_KINDS, groups))[("PrometheusRule", "demo-alerts")]
        return [g["name"] for g in rule["spec"]["groups"]]

    assert "venta.stores.demo" not in group_names(None)
    assert "venta.pods.demo" in group_names(None)  # cAdvisor's series need no exporter
    assert {"venta.platform.demo", "venta.stores.demo", "venta.pods.demo"} <= set(group_names(ON))


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"enabled": "maybe"}, "enabled"),
        ({"postgres": {"image": 5}}, "image"),
        ({"redis": {"resources": {"limits": {"memory": []}}}}, "memory"),
    ],
)
def test_garbage_exporter_settings_are_a_spec_error(patch: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError, match=field):
        parse_spec({"version": "1", "observability": {"exporters": patch}})
