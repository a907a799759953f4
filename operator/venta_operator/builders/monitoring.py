"""Prometheus Operator objects: a ServiceMonitor for every service's /metrics and a PrometheusRule of alerts.

Built only when the cluster serves the `monitoring.coreos.com/v1` kinds (the reconciler passes what discovery found):
applying a kind the API server does not know would fail the whole reconcile for an optional extra.
"""

from __future__ import annotations

from venta_operator.builders import Manifest
from venta_operator.naming import LABEL_MANAGED_BY, MANAGED_BY, child_name, labels, platform_selector
from venta_operator.spec import Platform

MONITORING_API = "monitoring.coreos.com/v1"
SERVICE_MONITOR = "ServiceMonitor"
PROMETHEUS_RULE = "PrometheusRule"


def service_monitor(p: Platform) -> Manifest:
    selector = {**platform_selector(p.name), LABEL_MANAGED_BY: MANAGED_BY}
    interval = p.spec.observability.service_monitor.interval
    return {
        "apiVersion": MONITORING_API,
        "kind": SERVICE_MONITOR,
        "metadata": {"name": child_name(p.name, "services"), "namespace": p.namespace,
                     "labels": labels(p.name, "monitoring")},
        "spec": {
            "selector": {"matchLabels": selector},
            "namespaceSelector": {"matchNames": [p.namespace]},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": interval}],
        },
    }


def _alert(name: str, expr: str, duration: str, severity: str, summary: str) -> Manifest:
    return {"alert": name, "expr": expr, "for": duration, "labels": {"severity": severity},
            "annotations": {"summary": summary, "runbook_url": f"docs/operations.md#{name.lower()}"}}


def alert_rules(p: Platform) -> list[Manifest]:
    """The alerts of the original design, scoped to this platform's namespace."""
    ns = f'namespace="{p.namespace}"'
    rate = "[5m]"
    return [
        _alert("VentaHighErrorRate",
               f"sum by (service) (rate(venta_http_server_errors_total{{{ns},status=~\"5..\"}}{rate}))"
               f" / sum by (service) (rate(venta_http_server_requests_total{{{ns}}}{rate})) > 0.05",
               "5m", "critical", "More than 5% of {{ $labels.service }} requests fail"),
        _alert("VentaHighLatency",
               "histogram_quantile(0.99, sum by (service, le) "
               f"(rate(venta_http_server_request_duration_seconds_bucket{{{ns}}}{rate}))) > 2",
               "10m", "warning", "p99 latency of {{ $labels.service }} is above 2 s"),
        _alert("VentaBreakerOpen", f"max by (breaker) (venta_breaker_state{{{ns}}}) == 2",
               "5m", "warning", "Circuit breaker {{ $labels.breaker }} has been open for 5 minutes"),
        _alert("VentaDependencyDown", f"min by (service, dependency) (venta_dependency_up{{{ns}}}) == 0",
               "5m", "critical", "{{ $labels.service }} cannot reach {{ $labels.dependency }}"),
    ]


def prometheus_rule(p: Platform) -> Manifest:
    return {
        "apiVersion": MONITORING_API,
        "kind": PROMETHEUS_RULE,
        "metadata": {"name": child_name(p.name, "alerts"), "namespace": p.namespace,
                     "labels": labels(p.name, "monitoring")},
        "spec": {"groups": [{"name": f"venta.{p.name}", "rules": alert_rules(p)}]},
    }


def monitoring(p: Platform, available_kinds: frozenset[str]) -> list[Manifest]:
    out = []
    obs = p.spec.observability
    if obs.service_monitor.enabled and SERVICE_MONITOR in available_kinds:
        out.append(service_monitor(p))
    if obs.alerts.enabled and PROMETHEUS_RULE in available_kinds:
        out.append(prometheus_rule(p))
    return out
