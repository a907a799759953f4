"""Prometheus Operator objects: a ServiceMonitor for every service's /metrics and a PrometheusRule of alerts.

Built only when the cluster serves the `monitoring.coreos.com/v1` kinds (the reconciler passes what discovery found):
applying a kind the API server does not know would fail the whole reconcile for an optional extra. The alerts are
not written here: they are the rule files shipped with the operator (one source of truth with the Prometheus that
scrapes `venta up`, tested by promtool), so without a rule file there is no PrometheusRule.

The data stores' exporters (builders/exporters.py) get a ServiceMonitor of their own, and the stores' rule groups
(observability/rules/venta-stores.yaml) join the PrometheusRule only when those exporters run.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from venta_operator.builders import Manifest, child_metadata
from venta_operator.builders.exporters import METRICS_PORT_NAME
from venta_operator.naming import LABEL_MANAGED_BY, MANAGED_BY, child_name, platform_selector
from venta_operator.promql import with_matcher
from venta_operator.spec import Platform

MONITORING_API = "monitoring.coreos.com/v1"
SERVICE_MONITOR = "ServiceMonitor"
PROMETHEUS_RULE = "PrometheusRule"
OPTIONAL_KINDS = frozenset({SERVICE_MONITOR, PROMETHEUS_RULE})  # served only if the Prometheus Operator is there
PLATFORM_LABEL = "venta_platform"
STORE_GROUP_PREFIX = "venta.stores"  # rule groups over the stores' exporters (observability/rules/venta-stores.yaml)


def service_monitor(p: Platform) -> Manifest:
    selector = {**platform_selector(p.name), LABEL_MANAGED_BY: MANAGED_BY}
    interval = p.spec.observability.service_monitor.interval
    return {
        "apiVersion": MONITORING_API,
        "kind": SERVICE_MONITOR,
        "metadata": child_metadata(p, "services", "monitoring"),
        "spec": {
            "selector": {"matchLabels": selector},
            "namespaceSelector": {"matchNames": [p.namespace]},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": interval}],
        },
    }


def stores_service_monitor(p: Platform) -> Manifest:
    """The data stores' exporters: the port named `metrics` of the platform's Services (only exporters have one)."""
    monitor = service_monitor(p)
    monitor["metadata"]["name"] = child_name(p.name, "stores")
    interval = p.spec.observability.service_monitor.interval
    monitor["spec"]["endpoints"] = [{"port": METRICS_PORT_NAME, "path": "/metrics", "interval": interval}]
    return monitor


def platform_groups(p: Platform, groups: Sequence[Manifest]) -> list[Manifest]:
    """The shipped rule groups that apply to this platform: the stores' (`venta.stores*`) only with their exporters."""
    exporters = p.spec.observability.exporters.enabled
    return [g for g in groups if exporters or not str(g["name"]).startswith(STORE_GROUP_PREFIX)]


def scoped_rule(rule: Manifest, p: Platform) -> Manifest:
    """A rule of the shipped file, reading only this platform's series and saying which platform it is about."""
    out = copy.deepcopy(rule)
    out["expr"] = with_matcher(rule["expr"], "namespace", p.namespace)
    if "alert" in out:
        out["labels"] = {**out.get("labels", {}), PLATFORM_LABEL: p.name}
    return out


def prometheus_rule(p: Platform, groups: Sequence[Manifest]) -> Manifest:
    """The platform's alerts: the groups of the operator's rule file (observability/rules/venta-platform.yaml in
    the image), every selector scoped to the platform's namespace, so that each platform alerts on its own series
    only, whatever else the Prometheus scrapes."""
    return {
        "apiVersion": MONITORING_API,
        "kind": PROMETHEUS_RULE,
        "metadata": child_metadata(p, "alerts", "monitoring"),
        "spec": {
            "groups": [
                {
                    **{k: v for k, v in g.items() if k != "rules"},
                    "name": f"{g['name']}.{p.name}",
                    "rules": [scoped_rule(r, p) for r in g["rules"]],
                }
                for g in groups
            ]
        },
    }


def monitoring(p: Platform, available_kinds: frozenset[str], alert_rules: Sequence[Manifest] = ()) -> list[Manifest]:
    out = []
    obs = p.spec.observability
    if obs.service_monitor.enabled and SERVICE_MONITOR in available_kinds:
        out.append(service_monitor(p))
        if obs.exporters.enabled:
            out.append(stores_service_monitor(p))
    groups = platform_groups(p, alert_rules)
    if obs.alerts.enabled and PROMETHEUS_RULE in available_kinds and groups:
        out.append(prometheus_rule(p, groups))
    return out
