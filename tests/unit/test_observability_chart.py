"""The Helm chart ships copies of the dashboards and of the operator's rule file (Helm can only read files inside
the chart): they must be the current ones, like the CRD copy (tests/unit/operator/test_operator_crd.py). The image
ships the originals to the operator, which the chart points at.

To refresh: `cp observability/dashboards/*.json charts/venta-operator/files/dashboards/ &&
cp observability/rules/venta-operator.yaml charts/venta-operator/files/rules/ &&
cp observability/logs/otel-collector.yaml charts/venta-operator/files/logs/`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.observability_assets import (
    DASHBOARDS,
    OBSERVABILITY,
    OPERATOR_RULES,
    PLATFORM_RULES,
    ROOT,
    STORE_RULES,
)

CHART = ROOT / "charts" / "venta-operator"
LOG_COLLECTOR = OBSERVABILITY / "logs" / "otel-collector.yaml"
COPIES = [(path, CHART / "files" / "dashboards" / path.name) for path in sorted(DASHBOARDS.glob("*.json"))]
COPIES.append((OPERATOR_RULES, CHART / "files" / "rules" / OPERATOR_RULES.name))
# The log collector's config (templates/log-collector.yaml, logs.collector.enabled).
COPIES.append((LOG_COLLECTOR, CHART / "files" / "logs" / LOG_COLLECTOR.name))


@pytest.mark.parametrize(("source", "copy"), COPIES, ids=lambda p: str(p.relative_to(ROOT)))
def test_chart_copy_is_current(source: Path, copy: Path) -> None:
    assert copy.is_file() and copy.read_text() == source.read_text(), (
        f"stale: cp {source.relative_to(ROOT)} {copy.relative_to(ROOT)}"
    )


def test_chart_has_no_copy_without_a_source() -> None:
    shipped = {p for p in (CHART / "files").rglob("*") if p.is_file()}
    assert shipped == {copy for _, copy in COPIES}


def test_image_and_chart_point_the_operator_at_the_shipped_assets() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())["operator"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY observability ./observability" in dockerfile and "WORKDIR /app" in dockerfile
    assert values["dashboardsDir"] == "/app/" + str(DASHBOARDS.relative_to(ROOT))
    assert values["alertRulesFile"] == "/app/" + str(PLATFORM_RULES.relative_to(ROOT))
    assert values["storeAlertRulesFile"] == "/app/" + str(STORE_RULES.relative_to(ROOT))
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    assert "VENTA_OPERATOR_DASHBOARDS_DIR" in deployment and "VENTA_OPERATOR_ALERT_RULES_FILE" in deployment
    assert "VENTA_OPERATOR_STORE_ALERT_RULES_FILE" in deployment
