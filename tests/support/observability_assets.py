"""The shipped observability assets read the way Grafana and Prometheus read them: every dashboard panel's query
(Grafana's variables given the values Grafana would), every rule's expression, and the metric names each reads.

Shared by the unit tests (dashboard model), the integration tests (promtool, a real Prometheus over `venta up`, the
metric contract) and the operator's end-to-end tests (its dashboard and alerts over a real operator), so that all
of them check the same list of queries. Platform assets are everything but the operator's dashboard and rule file,
whose metrics come from the operator process, not from the platform's services, and the stores' dashboard and rule
file, whose metrics come from the stores' exporters and the kubelet.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from venta_operator.promql import metric_names

ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY = ROOT / "observability"
DASHBOARDS = OBSERVABILITY / "dashboards"
RULES = OBSERVABILITY / "rules"
PLATFORM_RULES = RULES / "venta-platform.yaml"
OPERATOR_RULES = RULES / "venta-operator.yaml"
STORE_RULES = RULES / "venta-stores.yaml"
OPERATOR_DASHBOARD = "venta-operator.json"
STORES_DASHBOARD = "venta-stores.json"
# What the stores' dashboard and rules read besides Venta's own series: the exporters' (postgres_exporter,
# prometheus-nats-exporter's varz and jsz, redis_exporter), the kubelet's cAdvisor, kube-state-metrics, and `up`.
STORE_METRIC_PREFIXES = ("pg_", "gnatsd_", "jetstream_", "redis_", "container_", "kube_")

# What Grafana puts in place of its built-in variables, and of the dashboards' own (`All` is `.*`): a window long
# enough for a test that scraped for a minute, short enough to see what the workload just did.
DEFAULT_VALUES = {"__rate_interval": "1m", "__interval": "15s", "__range": "5m", "namespace": ".*", "service": ".*"}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


@dataclass(frozen=True)
class Query:
    source: str
    """Where it is written: `<file>: <panel title> [<refId>]` or `<file>: <alert name>`."""
    expr: str
    """As written (a dashboard's still has its Grafana variables)."""

    def concrete(self, values: Mapping[str, str] | None = None) -> str:
        """The expression Grafana would send (variables replaced); an unknown variable raises KeyError."""
        given = {**DEFAULT_VALUES, **(values or {})}

        def value(match: re.Match[str]) -> str:
            name = next(group for group in match.groups() if group)
            return given[name]

        return _VARIABLE.sub(value, self.expr)

    @property
    def metric_names(self) -> set[str]:
        return metric_names(self.expr)


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard's JSON model, by file name."""
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside (collapsed) rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def dashboard_queries(names: Iterable[str] | None = None) -> list[Query]:
    wanted = set(names) if names is not None else None
    out = []
    for name, dashboard in dashboards().items():
        if wanted is not None and name not in wanted:
            continue
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                out.append(Query(f"{name}: {panel.get('title')} [{target.get('refId')}]", target["expr"]))
    return out


def rule_groups(path: Path) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(path.read_text())["groups"]
    return groups


def rule_queries(path: Path) -> list[Query]:
    return [
        Query(f"{path.name}: {rule.get('alert') or rule.get('record')}", rule["expr"])
        for group in rule_groups(path)
        for rule in group["rules"]
    ]


def platform_queries() -> list[Query]:
    """What a Prometheus over the platform's services must answer: dashboards but the operator's, platform rules."""
    names = [name for name in dashboards() if name not in (OPERATOR_DASHBOARD, STORES_DASHBOARD)]
    return dashboard_queries(names) + rule_queries(PLATFORM_RULES)


def store_queries() -> list[Query]:
    """What a Prometheus over the stores' exporters (and the kubelet, kube-state-metrics) must answer."""
    return dashboard_queries([STORES_DASHBOARD]) + rule_queries(STORE_RULES)


def operator_queries() -> list[Query]:
    return dashboard_queries([OPERATOR_DASHBOARD]) + rule_queries(OPERATOR_RULES)


def exported_names(metrics_text: str) -> set[str]:
    """Every sample name in a /metrics page (`x_total`, `x_bucket`, `x_count`, ...), as PromQL would name them."""
    return {sample.name for family in text_string_to_metric_families(metrics_text) for sample in family.samples}


def missing_names(queries: Iterable[Query], exported: set[str]) -> dict[str, set[str]]:
    """Per query, the metric names it reads that nothing exports (empty dict: the contract holds)."""
    out = {}
    for query in queries:
        missing = query.metric_names - exported
        if missing:
            out[query.source] = missing
    return out
