"""The operator's environment is the services' configuration: every variable it sets is one a process reads, and
each component, loading its settings from exactly what the operator gives it, ends up pointed at the right peers.

A misspelt name does not fail anywhere else: pydantic-settings ignores unknown variables and the service quietly
keeps its local default (an issuer on 127.0.0.1, a Redis without a password) until the first real request fails
in a cluster. This test reads the rendered manifests the way the kubelet would and loads each service's settings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from services.cli.registry import SERVICES
from services.kit.config import GrpcTlsSettings
from services.kit.grpc.tls import GrpcTls
from tests.support.certificates import issue
from tests.support.operator_plans import ALGOLIA, CLERK, EXTERNAL, full_plan, make, pod_specs
from venta_operator.builders.configmap import settings as shared_settings
from venta_operator.plan import Plan

SECRET = "s3cr3t/+@-0123456789"  # stands in for every secretKeyRef: characters a URL must escape, 16+ long
# `venta reindex` reads them itself (the vendor service's address, and its TLS to it)
READ_BY_CLI = {"VENTA_VENDORS_ADDR", *(f"VENTA_{field.upper()}" for field in GrpcTlsSettings.model_fields)}


def _specs() -> dict[str, dict[str, Any]]:
    return {
        "local": {},
        "clerk": {
            "identity": {**CLERK, "clerk": {**CLERK["clerk"], "authorizedParties": ["https://app.example"]}},
            "search": ALGOLIA,
            **EXTERNAL,
        },
        # events on Redis Streams: the full re-index (JetStream's replay) is off, as the CRD requires
        "redis-events": {"events": {"provider": "redis"}, "search": {"reindexSchedule": "", "reindexOnCreate": False}},
        "grpc-tls": {"network": {"grpcTLS": {"secretName": "venta-grpc-tls"}}},
    }


MODES = list(_specs())


def _environments(plan: Plan) -> dict[str, dict[str, str]]:
    """Each workload's environment as its container sees it: the shared ConfigMap, then its own `env`."""
    configmaps = {m["metadata"]["name"]: m.get("data", {}) for m in plan.apply if m["kind"] == "ConfigMap"}
    out: dict[str, dict[str, str]] = {}
    for _, pod in pod_specs(plan.apply):
        for container in pod["containers"]:
            command = container.get("command") or []
            if command[:1] != ["venta"]:
                continue
            env: dict[str, str] = {}
            for source in container.get("envFrom", []):
                env.update(configmaps.get(source.get("configMapRef", {}).get("name"), {}))
            for item in container.get("env", []):
                env[item["name"]] = item.get("value", SECRET)
            key = command[2] if command[1] == "serve" else command[1]
            out[key] = env
    return out


def _fields(names: Any) -> set[str]:
    return {f"VENTA_{field.upper()}" for name in names for field in SERVICES[name].settings.model_fields}


@pytest.mark.parametrize("mode", MODES)
def test_every_variable_the_operator_sets_is_read_by_someone(mode: str) -> None:
    plan = full_plan(make(_specs()[mode]))
    readable = _fields(SERVICES) | READ_BY_CLI
    for workload, env in _environments(plan).items():
        unknown = {name for name in env if name.startswith("VENTA_")} - readable
        assert not unknown, f"{workload}: no process reads {sorted(unknown)}"
    shared = {n for n in shared_settings(make(_specs()[mode])) if not n.startswith("OTEL_")}
    assert shared <= readable, sorted(shared - readable)


def _own_env(plan: Plan) -> dict[str, set[str]]:
    """The variables each workload gets in its own `env` (what the operator meant for that process alone)."""
    out: dict[str, set[str]] = {}
    for _, pod in pod_specs(plan.apply):
        for container in pod["containers"]:
            command = container.get("command") or []
            if command[:1] == ["venta"]:
                key = command[2] if command[1] == "serve" else command[1]
                out[key] = {e["name"] for e in container.get("env", []) if e["name"].startswith("VENTA_")}
    return out


@pytest.mark.parametrize("mode", MODES)
def test_every_variable_a_workload_is_given_is_read_by_that_workload(mode: str) -> None:
    """Not just by someone: the gateway was once given the search database's name and credentials, which it did
    not read, so in a cluster it had no search at all (found on a real node)."""
    readers = {name: _fields([name]) for name in SERVICES}
    readers["migrate"] = _fields(n for n, e in SERVICES.items() if e.migrations is not None)
    readers["reindex"] = _fields(["search-sync"]) | READ_BY_CLI
    for workload, names in _own_env(full_plan(make(_specs()[mode]))).items():
        unread = names - readers[workload]
        assert not unread, f"{workload} is given {sorted(unread)} but does not read them"


@pytest.mark.parametrize("mode", MODES)
def test_each_service_loads_the_configuration_the_operator_means(
    mode: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    p = make(_specs()[mode])
    environments = _environments(full_plan(p))
    mounted = issue(tmp_path)  # the files the Secret's volume holds in the pod (the settings check they exist)
    files = {"tls.crt": mounted.cert, "tls.key": mounted.key, "ca.crt": mounted.ca}
    assert set(SERVICES) - {"identity"} <= set(environments)
    loaded: dict[str, Any] = {}
    for name, entry in SERVICES.items():
        if name not in environments:
            continue
        with monkeypatch.context() as env:
            for variable in [v for v in os.environ if v.startswith("VENTA_")]:
                env.delenv(variable)
            for variable, value in environments[name].items():
                if variable.startswith("VENTA_GRPC_TLS_") and variable.endswith("_FILE"):
                    value = str(files[Path(value).name])
                env.setenv(variable, value)
            loaded[name] = entry.settings()

    issuer = "https://clerk.example" if mode == "clerk" else "http://demo-identity.shop.svc:5010"
    for edge in ("gateway", "websocket"):
        settings = loaded[edge]
        assert settings.auth_issuer == issuer, edge
        assert settings.jwks_url.startswith(issuer) and settings.jwks_url.endswith("/.well-known/jwks.json"), edge
        assert settings.users_addr == "dns:///demo-users-headless.shop.svc:5000", edge
        assert settings.location_addr == "dns:///demo-location-headless.shop.svc:5001", edge
        assert SECRET.replace("/", "%2F").replace("+", "%2B").replace("@", "%40") in settings.redis_dsn, edge
        assert settings.http_port == SERVICES[edge].http_port
    if mode == "clerk":
        assert loaded["gateway"].auth_authorized_parties == ["https://app.example"]
        assert loaded["gateway"].clerk_webhook_secret.get_secret_value() == SECRET
    else:
        assert loaded["identity"].identity_issuer == issuer  # what it signs is what the edges expect
        assert loaded["websocket"].auth_authorized_parties == [loaded["identity"].identity_authorized_party]
    for service in ("users", "vendors", "location"):
        assert loaded[service].grpc_port == SERVICES[service].grpc_port
    assert loaded["users"].vendors_addr == "dns:///demo-vendors-headless.shop.svc:5005"
    for name, settings in loaded.items():
        assert settings.host == "0.0.0.0", name  # probes and peers reach the pod's address, not its loopback
    gateway = loaded["gateway"]
    assert str(gateway.upload_dir) == "/var/lib/venta/uploads" and gateway.cloudinary_url is None
    assert gateway.public_url == "http://demo-gateway.shop.svc:5002"
    escaped = SECRET.replace("/", "%2F").replace("+", "%2B").replace("@", "%40")
    on_events = {name: settings for name, settings in loaded.items() if hasattr(settings, "events_provider")}
    assert {"users", "vendors", "gateway", "websocket", "search-sync"} <= set(on_events)
    for name, settings in on_events.items():  # every publisher and consumer reaches the broker the spec chose
        if mode == "redis-events":
            assert settings.events_provider == "redis", name
            assert settings.redis_url == loaded["gateway"].redis_url, name
            assert escaped in settings.redis_dsn, f"{name} is not given Redis's password"
        else:
            assert settings.events_provider == "jetstream", name
            assert settings.nats_url.startswith("nats://"), name
    if mode == "clerk":  # search sync indexes where the gateway searches
        assert loaded["search-sync"].search_provider == loaded["gateway"].search_provider == "algolia"
        assert loaded["search-sync"].algolia_app_id == "APP"
        assert loaded["search-sync"].algolia_api_key.get_secret_value() == SECRET
    # every process that serves or calls gRPC speaks mutual TLS when the spec asks, and nothing else does
    speaking_tls = {name for name, settings in loaded.items() if getattr(settings, "grpc_tls_cert_file", None)}
    grpc_processes = {"users", "location", "vendors", "gateway", "websocket", "notifications", "identity"}
    assert speaking_tls == (grpc_processes & set(loaded) if mode == "grpc-tls" else set())
    for name in speaking_tls:
        tls = GrpcTls.from_settings(loaded[name])
        assert tls is not None and tls.root_certificates == mounted.ca.read_bytes(), name


@pytest.mark.parametrize("mode", MODES)
def test_the_migration_job_migrates_each_service_into_its_own_database(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`venta migrate --all` loads every service's settings from the Job's one environment: a database name in it
    would send every service's tables into that one database (found on a real node, not on KWOK)."""
    env = _environments(full_plan(make(_specs()[mode])))["migrate"]
    assert "VENTA_DB_NAME" not in env and "VENTA_DATABASE_URL" not in env
    for name, entry in SERVICES.items():
        if entry.migrations is None:
            continue
        with monkeypatch.context() as patched:
            for variable in [v for v in os.environ if v.startswith("VENTA_")]:
                patched.delenv(variable)
            for variable, value in env.items():
                patched.setenv(variable, value)
            settings = entry.settings()
        assert settings.db_name == entry.settings.model_fields["db_name"].default, name
        assert settings.db_password.get_secret_value() == SECRET, name
