"""Data stores, Services, budgets, policies and monitoring objects."""

from __future__ import annotations

import base64
from pathlib import Path

from tests.support.operator_plans import CLERK, by_key, env_of, full_plan, make
from venta_operator.builders.configmap import init_script
from venta_operator.builders.deployment import redis_deployment
from venta_operator.builders.monitoring import monitoring
from venta_operator.builders.networkpolicy import network_policies
from venta_operator.builders.pdb import pdbs
from venta_operator.builders.secret import credentials_secret, generated_secret_names, secret_keys
from venta_operator.builders.service import services
from venta_operator.builders.statefulset import nats_statefulset, postgres_statefulset
from venta_operator.components import DATABASES
from venta_operator.config import load_alert_rules

PLATFORM_RULES = Path(__file__).resolve().parents[3] / "observability" / "rules" / "venta-platform.yaml"


def test_nats_runs_jetstream_on_a_volume() -> None:
    sts = nats_statefulset(make())
    assert sts is not None
    c = sts["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "nats:2.11-alpine" and "--jetstream" in c["args"]
    assert c["args"][c["args"].index("--store_dir") + 1] == "/data"
    claim = sts["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"
    assert sts["spec"]["serviceName"] == "demo-nats-headless"


REDIS_EVENTS = {"events": {"provider": "redis"}, "search": {"reindexSchedule": "", "reindexOnCreate": False}}


def test_managed_redis_is_a_cache_unless_the_events_are_in_it() -> None:
    def args(spec: dict[str, object]) -> list[str]:
        deployment = redis_deployment(make(spec))
        assert deployment is not None
        return list(deployment["spec"]["template"]["spec"]["containers"][0]["args"])

    cache, events = args({}), args(REDIS_EVENTS)
    assert cache[cache.index("--appendonly") + 1] == "no"
    assert events[events.index("--appendonly") + 1] == "yes"
    assert events[events.index("--appendfsync") + 1] == "everysec"


def test_postgres_keeps_data_when_asked_to() -> None:
    p = make({"postgres": {"managed": {"storage": {"deleteWithPlatform": False, "storageClassName": "fast"}}}})
    sts = postgres_statefulset(p)
    assert sts is not None
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "fast"
    env = env_of(sts["spec"]["template"]["spec"]["containers"][0])
    assert env["POSTGRES_PASSWORD"] == {"secretKeyRef": {"name": "demo-postgres-credentials", "key": "admin-password"}}
    assert env["PGDATA"].startswith("/var/lib/postgresql/data/")
    from venta_operator.plan import secret_owned

    assert not secret_owned(p, "demo-postgres-credentials")  # the data outlives the platform: so must its password
    assert secret_owned(make(), "demo-postgres-credentials")


def test_init_script_creates_one_database_per_service_without_splicing_secrets() -> None:
    script = init_script()
    for db in DATABASES:
        assert f'CREATE DATABASE {db} OWNER :"app_user";' in script
    assert set(DATABASES) == {"venta_users", "venta_vendors", "venta_location", "venta_search", "venta_notifications"}
    assert "$VENTA_DB_PASSWORD" in script and ":'app_password'" in script
    assert "<<'SQL'" in script  # quoted heredoc: the shell expands nothing inside the SQL


def test_generated_secrets_hold_base64_data_only() -> None:
    p = make()
    assert generated_secret_names(p) == [
        "demo-postgres-credentials",
        "demo-redis-credentials",
        "demo-identity-keys",
        "demo-identity-admin",
    ]
    assert secret_keys("demo-postgres-credentials", "demo") == {"password": "password", "admin-password": "password"}
    assert secret_keys("demo-identity-keys", "demo") == {"0-signing-key.pem": "rsa-private-key"}
    assert secret_keys("demo-identity-admin", "demo") == {"token": "password"}
    assert not {"demo-identity-keys", "demo-identity-admin"} & set(generated_secret_names(make({"identity": CLERK})))
    secret = credentials_secret(p, "demo-postgres-credentials", {"password": "p1", "admin-password": "p2"})
    assert "stringData" not in secret
    assert base64.b64decode(secret["data"]["username"]) == b"venta"
    assert base64.b64decode(secret["data"]["password"]) == b"p1"


def test_services_name_their_ports() -> None:
    svcs = by_key(services(make({"services": {"gateway": {"serviceType": "LoadBalancer"}}})))
    users = svcs[("Service", "demo-users")]["spec"]
    assert {p["name"]: p["port"] for p in users["ports"]} == {"http": 9000, "grpc": 5000}
    assert svcs[("Service", "demo-gateway")]["spec"]["type"] == "LoadBalancer"
    assert svcs[("Service", "demo-postgres-headless")]["spec"]["clusterIP"] == "None"
    assert all(s["spec"]["selector"]["app.kubernetes.io/instance"] == "demo" for s in svcs.values())


def test_budgets_only_for_replicated_services() -> None:
    names = {m["metadata"]["name"] for m in pdbs(make())}
    assert names == {"demo-gateway", "demo-websocket"}
    scaled = make({"services": {"users": {"autoscaling": {"enabled": True, "minReplicas": 2}}}})
    assert "demo-users" in {m["metadata"]["name"] for m in pdbs(scaled)}


def test_network_policies_deny_by_default_and_open_the_public_door() -> None:
    assert network_policies(make({"networkPolicy": {"enabled": False}})) == []
    policies = by_key(network_policies(make({"networkPolicy": {"metricsNamespaceLabels": {"name": "monitoring"}}})))
    deny = policies[("NetworkPolicy", "demo-default-deny")]["spec"]
    assert deny["ingress"] == [] and deny["policyTypes"] == ["Ingress"]
    gateway = policies[("NetworkPolicy", "demo-gateway")]["spec"]["ingress"]
    assert gateway == [{"ports": [{"protocol": "TCP", "port": 5002}]}]
    users = policies[("NetworkPolicy", "demo-users")]["spec"]["ingress"]
    assert {s["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for s in users[0]["from"]} == {
        "gateway",
        "websocket",
        "notifications",
        "identity",
    }  # its callers only (the whole matrix: test_operator_ingress.py)
    assert users[1]["from"] == [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]
    assert ("NetworkPolicy", "demo-postgres") in policies


def test_monitoring_objects_only_when_the_cluster_serves_them() -> None:
    p, rules = make(), load_alert_rules(PLATFORM_RULES)
    both = frozenset({"ServiceMonitor", "PrometheusRule"})
    assert monitoring(p, frozenset(), rules) == []
    kinds = [m["kind"] for m in monitoring(p, both, rules)]
    assert kinds == ["ServiceMonitor", "PrometheusRule"]
    off = make({"observability": {"serviceMonitor": {"enabled": False}, "alerts": {"enabled": False}}})
    assert monitoring(off, both, rules) == []
    assert [m["kind"] for m in monitoring(p, both)] == ["ServiceMonitor"]  # no rule file shipped: no alerts
    rule = monitoring(p, frozenset({"PrometheusRule"}), rules)[0]
    exprs = " ".join(r["expr"] for r in rule["spec"]["groups"][0]["rules"])
    assert 'namespace="shop"' in exprs and "venta_http_server_errors_total" in exprs


def test_child_names_fit_kubernetes_limits() -> None:
    longest = "a" * 40
    plan = full_plan(make(name=longest))
    for kind, name in by_key(plan.apply):
        limit = 52 if kind in ("CronJob", "StatefulSet") else 63
        assert len(name) <= limit, (kind, name)


def test_dashboards_configmap_for_the_grafana_sidecar() -> None:
    from venta_operator.plan import Facts, desired

    dashboards = {"overview.json": '{"title": "Venta"}'}
    plan = desired(make(), Facts(uid="u", dashboards=dashboards))
    cm = by_key(plan.apply)[("ConfigMap", "demo-dashboards")]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1" and cm["data"] == dashboards
    disabled = make({"observability": {"dashboards": {"enabled": False}}})
    off = desired(disabled, Facts(uid="u", dashboards=dashboards))
    assert ("ConfigMap", "demo-dashboards") not in by_key(off.apply)
    assert ("ConfigMap", "demo-dashboards") not in by_key(desired(make(), Facts(uid="u")).apply)
