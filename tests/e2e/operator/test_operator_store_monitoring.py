"""The stores' exporters on a real API server that serves the Prometheus Operator's kinds: the operator creates the
`<platform>-stores` ServiceMonitor and puts the stores' alert group in `<platform>-alerts`, both accepted by the
real CRDs' schemas (generated from the Prometheus Operator's API types, tests/cluster/build-monitoring.sh), and
takes them away again when the exporters are turned off; garbage exporter settings are refused by the API server.

The session's operator is restarted with the rule files the chart gives it (the image's paths, here the
repository's) once the CRDs exist, and restarted as it was, without the CRDs, afterwards: the other modules count
the operator's requests on a cluster without the Prometheus Operator.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.kwok import Kubectl
from tests.support.observability_assets import PLATFORM_RULES, ROOT, STORE_RULES
from tests.support.operator_e2e import OperatorProcess, Platforms, platform_manifest, wait_for

pytestmark = pytest.mark.cluster

BUILD = ROOT / "tests" / "cluster" / "build-monitoring.sh"
CRDS = ("servicemonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com")
EXPORTERS_ON = {"observability": {"exporters": {"enabled": True}}}


@pytest.fixture(scope="module")
def monitoring_crds(kubectl: Kubectl, operator: OperatorProcess) -> Iterator[None]:
    done = subprocess.run([str(BUILD), "crds"], capture_output=True, text=True, timeout=1200, check=False)
    assert done.returncode == 0, done.stderr
    directory = Path(done.stdout.split()[-1])
    for crd in CRDS:
        kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            str(directory / f"monitoring.coreos.com_{crd.split('.')[0]}.yaml"),
        )
        kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")
    original = operator.settings
    operator.stop()
    operator.settings = {
        **original,
        "VENTA_OPERATOR_ALERT_RULES_FILE": str(PLATFORM_RULES),
        "VENTA_OPERATOR_STORE_ALERT_RULES_FILE": str(STORE_RULES),
    }
    operator.start()
    try:
        yield
    finally:
        kubectl("delete", "crd", *CRDS, "--ignore-not-found", "--wait=true", "--timeout=60s")
        operator.stop()
        operator.settings = original
        operator.start()


def group_names(platforms: Platforms, name: str) -> list[str]:
    rule = platforms.get("prometheusrule", f"{name}-alerts") or {"spec": {"groups": []}}
    return [g["name"] for g in rule["spec"]["groups"]]


def test_exporters_get_their_service_monitor_and_alerts_and_lose_them_when_off(
    monitoring_crds: None, platforms: Platforms, operator: OperatorProcess
) -> None:
    platforms.apply(platform_manifest("watched", EXPORTERS_ON))
    platforms.wait_ready("watched")
    monitor = wait_for(lambda: platforms.get("servicemonitor", "watched-stores"), timeout=60, what="the ServiceMonitor")
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s"}]
    assert platforms.get("servicemonitor", "watched-services") is not None
    assert {"venta.platform.watched", "venta.stores.watched", "venta.pods.watched"} <= set(
        group_names(platforms, "watched")
    )
    ports = {
        s: {p["name"]: p["port"] for p in (platforms.get("service", s) or {})["spec"]["ports"]}
        for s in ("watched-nats", "watched-postgres", "watched-redis")
    }
    assert {s: p.get("metrics") for s, p in ports.items()} == {
        "watched-nats": 7777,
        "watched-postgres": 9187,
        "watched-redis": 9121,
    }
    sts = platforms.get("statefulset", "watched-postgres") or {}
    assert [c["name"] for c in sts["spec"]["template"]["spec"]["containers"]] == ["postgres", "postgres-exporter"]
    # converged: the API server's defaults on the sidecars and the Prometheus Operator's objects are no drift
    time.sleep(2)
    before = operator.writes()
    time.sleep(10)  # at least two drift passes (every 4 s in these tests)
    assert operator.writes() == before

    platforms.patch("watched", {"spec": {"observability": {"exporters": {"enabled": False}}}})
    platforms.wait_ready("watched")
    wait_for(lambda: platforms.get("servicemonitor", "watched-stores") is None, timeout=60, what="its removal")
    assert "venta.stores.watched" not in group_names(platforms, "watched")
    assert "venta.pods.watched" in group_names(platforms, "watched")


def test_an_external_store_gets_an_exporter_deployment(monitoring_crds: None, platforms: Platforms) -> None:
    platforms.kubectl(
        "-n",
        platforms.ns,
        "create",
        "secret",
        "generic",
        "db",
        "--from-literal=username=u",
        "--from-literal=password=p",
    )
    spec = {
        **EXPORTERS_ON,
        "postgres": {"external": {"host": "db.example", "credentialsSecretRef": {"name": "db"}}},
    }
    platforms.apply(platform_manifest("outside", spec))
    platforms.wait_ready("outside")
    deployment = platforms.get("deployment", "outside-postgres-exporter") or {}
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "prometheuscommunity/postgres-exporter:v0.17.1"
    service = platforms.get("service", "outside-postgres-exporter") or {}
    assert service["spec"]["ports"][0]["name"] == "metrics"
    assert platforms.get("servicemonitor", "outside-stores") is not None


@pytest.mark.parametrize(
    ("exporters", "expected"),
    [
        ({"enabled": "yes"}, ["spec.observability.exporters.enabled", "boolean"]),
        ({"nats": {"monitorUrl": "ftp://nats:8222"}}, ["spec.observability.exporters.nats.monitorUrl"]),
        ({"nats": {"monitorUrl": "http://user:pw@nats:8222"}}, ["spec.observability.exporters.nats.monitorUrl"]),
        (
            {"redis": {"resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "64Mi"}}}},
            ["requests.memory must not exceed limits.memory"],
        ),
        ({"postgres": {"image": ""}}, ["spec.observability.exporters.postgres.image"]),
    ],
    ids=["enabled-a-word", "monitor-url-ftp", "monitor-url-credentials", "requests-above-limits", "empty-image"],
)
def test_garbage_exporter_settings_are_refused_naming_the_field(
    kubectl: Kubectl, namespace: str, exporters: dict[str, Any], expected: list[str]
) -> None:
    manifest = platform_manifest("garbage", {"observability": {"exporters": exporters}})
    result = kubectl("-n", namespace, "apply", "--dry-run=server", "-f", "-", input=json.dumps(manifest), check=False)
    output = result.stderr + result.stdout
    assert result.returncode != 0, f"{exporters} was accepted"
    for text in expected:
        assert text in output, f"{text!r} not in {output}"
