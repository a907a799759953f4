"""The Prometheus rule files' structure: the alerts the design asks for, each with a severity, a summary, and a
runbook whose section exists in docs/runbooks.md (and no runbook without its alert).

promtool's own checks and unit tests run in tests/integration/observability (they need the built promtool).
"""

from __future__ import annotations

import re

import pytest
import yaml

from tests.support.observability_assets import (
    OPERATOR_RULES,
    PLATFORM_RULES,
    ROOT,
    RULES,
    STORE_METRIC_PREFIXES,
    STORE_RULES,
    rule_groups,
)
from venta_operator.promql import metric_names

RUNBOOKS = ROOT / "docs" / "runbooks.md"
RUNBOOK_URL = "https://github.com/venta/venta/blob/main/docs/runbooks.md#"
REQUIRED = {
    PLATFORM_RULES.name: {
        "VentaHighErrorRate",
        "VentaGrpcHighErrorRate",
        "VentaHighLatency",
        "VentaGrpcHighLatency",
        "VentaBreakerOpen",
        "VentaDependencyDown",
        "VentaEventConsumerLag",
        "VentaEventsDeadLettered",
        "VentaOutboxBacklog",
        "VentaNotificationPushesFailing",
    },
    OPERATOR_RULES.name: {"VentaOperatorReconcileFailing"},
    STORE_RULES.name: {
        "VentaStoreDown",
        "VentaPostgresConnectionsNearMax",
        "VentaJetStreamStorageNearLimit",
        "VentaJetStreamConsumerFallingBehind",
        "VentaRedisMemoryNearMax",
        "VentaPodMemoryNearLimit",
    },
}
RULES_BY_NAME = {
    rule["alert"]: (path, rule)
    for path in sorted(RULES.glob("*.yaml"))
    for group in rule_groups(path)
    for rule in group["rules"]
}


def github_anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_alerts_of_the_design_are_there() -> None:
    found: dict[str, set[str]] = {}
    for name, (path, _) in RULES_BY_NAME.items():
        found.setdefault(path.name, set()).add(name)
    assert found == REQUIRED


def test_rule_files_are_prometheus_rule_files() -> None:
    for path in sorted(RULES.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        assert set(document) == {"groups"}, path.name
        names = [group["name"] for group in document["groups"]]
        assert len(names) == len(set(names)) and all(n.startswith("venta.") for n in names), path.name
        for group in document["groups"]:
            assert set(group) <= {"name", "interval", "rules", "labels", "limit"}, path.name
            for rule in group["rules"]:
                assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}, rule


@pytest.mark.parametrize("name", sorted(RULES_BY_NAME))
def test_alert_is_complete(name: str) -> None:
    path, rule = RULES_BY_NAME[name]
    assert rule["labels"]["severity"] in ("critical", "warning")
    assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    assert rule["annotations"]["runbook_url"] == RUNBOOK_URL + name.lower()
    names = metric_names(rule["expr"])
    if path == STORE_RULES:  # the exporters', the kubelet's and kube-state-metrics' series, and targets' `up`
        assert names and all(n == "up" or n.startswith(STORE_METRIC_PREFIXES) for n in names), names
    else:
        assert names and all(n.startswith("venta_") for n in names), names
    # every aggregation keeps `namespace`: an alert must say which platform it is about on a shared Prometheus
    for grouping in re.findall(r"\bby\s*\(([^)]*)\)", rule["expr"]):
        assert "namespace" in [label.strip() for label in grouping.split(",")], f"{name}: by ({grouping})"


def test_every_alert_has_a_runbook_section_and_every_section_an_alert() -> None:
    headings = [line.removeprefix("## ") for line in RUNBOOKS.read_text().splitlines() if line.startswith("## ")]
    assert sorted(github_anchor(h) for h in headings) == sorted(name.lower() for name in RULES_BY_NAME)
    assert sorted(headings) == sorted(RULES_BY_NAME)


def test_runbook_links_between_sections_resolve() -> None:
    text = RUNBOOKS.read_text()
    anchors = {github_anchor(line.removeprefix("## ")) for line in text.splitlines() if line.startswith("## ")}
    for target in re.findall(r"\]\(#([\w-]+)\)", text):
        assert target in anchors, target


def test_local_prometheus_config_scrapes_every_service_with_the_platform_rules() -> None:
    from services.cli.registry import SERVICES

    config = yaml.safe_load((ROOT / "observability" / "prometheus" / "venta-up.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets == {name: [f"127.0.0.1:{entry.http_port}"] for name, entry in SERVICES.items()}
    assert config["rule_files"] == [f"../rules/{PLATFORM_RULES.name}"]
