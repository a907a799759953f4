"""The operator's observability on a real API server: its JSON log lines, and its Grafana dashboard and alerts over
a real Prometheus scraping the real operator after real reconciles.

The counterpart of tests/integration/observability/test_prometheus_platform.py, which checks the platform's
dashboards and alerts over `venta up`: the operator's metrics exist only in the operator process, so they are
checked here, where it runs (as the chart runs it: `kopf run --log-format=json`).
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from tests.cluster.kwok import KwokCluster
from tests.cluster.prometheus_process import PrometheusServer, selector_names
from tests.support.observability_assets import OPERATOR_RULES, exported_names, missing_names, operator_queries
from tests.support.operator_e2e import OperatorProcess, Platforms

pytestmark = pytest.mark.cluster
NEVER = "0001-01-01T00:00:00Z"  # Prometheus's lastEvaluation of a rule not evaluated yet
FIELDS = {"timestamp", "level", "service", "message", "trace_id", "span_id", "request_id"}


def reconciled(platforms: Platforms, name: str) -> None:
    platforms.apply(
        {
            "apiVersion": "venta.io/v1alpha1",
            "kind": "VentaPlatform",
            "metadata": {"name": name},
            "spec": {"version": "1.0.0"},
        }
    )
    platforms.wait_ready(name)


def test_operator_logs_are_platform_json_lines(platforms: Platforms, operator: OperatorProcess) -> None:
    reconciled(platforms, "logged")
    lines = [json.loads(line) for line in operator.log.read_text().splitlines() if line.strip()]
    assert lines and all(set(line) >= FIELDS and line["service"] == "operator" for line in lines)
    passes = [
        line
        for line in lines
        if line["logger"] == "venta_operator" and (line.get("object") or {}).get("name") == "logged"
    ]
    assert passes and passes[-1]["ready"] is True, passes
    assert len({line["request_id"] for line in passes} - {None}) == len(passes)  # one id per reconcile pass


def test_operator_dashboard_and_alerts_work_on_the_real_operator(
    platforms: Platforms, operator: OperatorProcess, kube_cluster: KwokCluster, tmp_path: Path
) -> None:
    reconciled(platforms, "watched")
    prometheus_binary = kube_cluster.tools.prometheus
    assert prometheus_binary is not None, "prometheus was not built: run tests/cluster/build.sh"
    with PrometheusServer(
        prometheus_binary,
        tmp_path,
        rule_files=[OPERATOR_RULES],
        targets={"operator": [f"127.0.0.1:{operator.metrics_port}"]},
    ) as prometheus:
        prometheus.wait_for_scrapes(3)
        empty = [q.source for q in operator_queries() if q.source.endswith("]") and not prometheus.query(q.concrete())]
        assert not empty, "operator panels without data:\n" + "\n".join(empty)
        for query in operator_queries():
            prometheus.query(query.concrete())  # raises on an error
            assert query.metric_names == selector_names(prometheus.parse(query.concrete())), query.source
        prometheus.wait(
            lambda: all(rule["lastEvaluation"] != NEVER for rule in prometheus.rules()),
            30,
            "the operator's rules to be evaluated",
        )
        assert all(rule["health"] == "ok" for rule in prometheus.rules())
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5) as answer:
        exported = exported_names(answer.read().decode())
    assert not missing_names(operator_queries(), exported)
