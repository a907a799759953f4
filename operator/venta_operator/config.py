"""The operator process's own settings, from VENTA_OPERATOR_* environment variables (set by the Helm chart), and the
observability assets it hands to every platform (Grafana dashboards, alert rules), read once at start.

Read when `handlers` is imported, because Kopf's decorators take the timer interval at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from venta_operator.promql import selectors


class OperatorConfig(BaseSettings):
    """The operator process's own settings; the Helm chart sets most of them from its values."""

    model_config = SettingsConfigDict(env_prefix="VENTA_OPERATOR_", extra="ignore", frozen=True)

    # Passes in flight at once (a waiting platform holds no worker); the requests in flight across them are bounded
    # separately (reconciler.CONCURRENCY = 16, which four passes of 12 lists each already fill). More passes than
    # that only wait for a request slot while holding their platform's children in memory (bench/README.md).
    workers: int = Field(
        default=4,
        ge=1,
        le=256,
        description="Reconcile passes running at the same time, over different platforms (chart value "
        "`operator.workers`).",
    )
    drift_interval_s: float = Field(
        default=60.0,
        ge=1,
        description="Seconds between drift-correcting passes, which undo changes made to children by hand (chart value "
        "`operator.driftIntervalSeconds`).",
    )
    retry_delay_s: float = Field(
        default=5.0,
        ge=0.1,
        description="Longest wait, in seconds, before re-checking a platform that is still converging (the waits "
        "start at 1 s and double; chart value `operator.retryDelaySeconds`).",
    )
    error_delay_s: float = Field(
        default=30.0, ge=0.1, description="Seconds to wait before retrying after the API server refused a request."
    )
    metrics_port: int = Field(
        default=8080,
        ge=0,
        le=65535,
        description="The port of the operator's `/metrics` (chart value `metrics.port`); 0 disables the endpoint.",
    )
    dashboards_dir: Path | None = Field(
        default=None,
        description="A directory of Grafana dashboards (`*.json`) given to every platform (chart value "
        "`operator.dashboardsDir`); unset or missing, none.",
    )
    alert_rules_file: Path | None = Field(
        default=None,
        description="A Prometheus rule file whose groups become every platform's PrometheusRule, checked at start "
        "(chart value `operator.alertRulesFile`); unset or missing, none.",
    )
    store_alert_rules_file: Path | None = Field(
        default=None,
        description="A Prometheus rule file over the data stores' exporters, whose groups join the PrometheusRule of "
        "every platform that runs them (`spec.observability.exporters`), checked at start (chart value "
        "`operator.storeAlertRulesFile`); unset or missing, none.",
    )


def load_dashboards(directory: Path | None) -> dict[str, str]:
    """Dashboard files by name; none when the directory is unset or missing (then no dashboards ConfigMap)."""
    if directory is None or not directory.is_dir():
        return {}
    return {path.name: path.read_text() for path in sorted(directory.rglob("*.json"))}


class AlertRulesError(ValueError):
    pass


def load_alert_rules(path: Path | None) -> list[dict[str, Any]]:
    """The rule groups of a Prometheus rule file; none when the path is unset or missing (then no PrometheusRule).

    Checked here, at start, so that a malformed file stops the operator with its name instead of producing
    PrometheusRules that Prometheus refuses: groups with names and rules, each rule an alert or a record with a
    readable expression.
    """
    if path is None or not path.is_file():
        return []
    document = yaml.safe_load(path.read_text())
    groups = document.get("groups") if isinstance(document, dict) else None
    if not isinstance(groups, list) or not groups:
        raise AlertRulesError(f"{path}: no `groups` list")
    for group in groups:
        if not isinstance(group, dict) or not group.get("name") or not isinstance(group.get("rules"), list):
            raise AlertRulesError(f"{path}: every group needs a name and a list of rules")
        for rule in group["rules"]:
            if not isinstance(rule, dict) or not (rule.get("alert") or rule.get("record")):
                raise AlertRulesError(f"{path}: group {group['name']}: a rule without `alert` or `record`")
            if not isinstance(rule.get("expr"), str) or not rule["expr"].strip():
                raise AlertRulesError(f"{path}: {rule.get('alert') or rule.get('record')}: no `expr`")
            selectors(rule["expr"])  # raises PromQLSyntaxError (a ValueError) on text it cannot read
    return groups
