"""The operator's observability: PrometheusRule built from the shipped rule file and scoped to the platform, the
PromQL reader that scopes it, the rule file loader, its JSON log lines and its pre-created metric series.

The reader is also checked against Prometheus's own parser and promtool for every shipped expression, in
tests/integration/observability.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import kopf
import pytest
from kopf._core.actions.loggers import ObjectJsonFormatter
from prometheus_client import REGISTRY

from tests.support.operator_plans import make
from venta_operator.builders.monitoring import PLATFORM_LABEL, prometheus_rule
from venta_operator.config import AlertRulesError, load_alert_rules
from venta_operator.logs import OperatorJsonFormatter, request_scope, use_platform_format
from venta_operator.promql import PromQLSyntaxError, metric_names, selectors, with_matcher

PLATFORM_RULES = Path(__file__).resolve().parents[3] / "observability" / "rules" / "venta-platform.yaml"


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        (
            'sum by (service) (rate(a_total{status=~"5.."}[5m])) / sum by (service) (rate(b_total[5m])) > 0.05',
            {"a_total", "b_total"},
        ),
        ("histogram_quantile(0.99, sum by (namespace, le) (rate(x_bucket[$__rate_interval])))", {"x_bucket"}),
        ("max(a) by (job) == 2 and on (job) group_left (team) b unless ignoring (pod) c offset 10m", {"a", "b", "c"}),
        ('label_replace(a, "dst", "sum(b)", "src", "(.*)") + count_values("x", c) + topk(3, d)', {"a", "c", "d"}),
        ('{__name__="x", job="y"} or {__name__=~"z.*"}', {"x"}),
        ("rate(a[5m:30s]) * 1e3 - -Inf + NaN + 0x1f + sum without (le) (b_bucket) bool > 1", {"a", "b_bucket"}),
        ("a @ start() + b @ 1609746000 + c:recorded:rate5m  # comment with d_total", {"a", "b", "c:recorded:rate5m"}),
        ('sum(rate(a{service=~"$service", ns=~"${namespace:regex}"}[$__rate_interval]))', {"a"}),
    ],
)
def test_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


@pytest.mark.parametrize(
    ("expr", "scoped"),
    [
        ("a", 'a{namespace="shop"}'),
        ("a{}", 'a{namespace="shop"}'),
        ('a{b="c"}', 'a{b="c",namespace="shop"}'),
        ('a{b="c",}', 'a{b="c",namespace="shop"}'),
        ('{__name__="a"}[5m]', '{__name__="a",namespace="shop"}[5m]'),
        (
            "sum by (x) (rate(a[5m] offset 1h)) / on (x) b",
            'sum by (x) (rate(a{namespace="shop"}[5m] offset 1h)) / on (x) b{namespace="shop"}',
        ),
        ("x unless x offset 10m", 'x{namespace="shop"} unless x{namespace="shop"} offset 10m'),
    ],
)
def test_with_matcher_scopes_every_selector(expr: str, scoped: str) -> None:
    assert with_matcher(expr, "namespace", "shop") == scoped


def test_with_matcher_quotes_the_value_and_refuses_a_bad_label() -> None:
    assert with_matcher("a", "ns", 'we"ird\\') == 'a{ns="we\\"ird\\\\"}'
    with pytest.raises(ValueError):
        with_matcher("a", "bad-label", "x")


@pytest.mark.parametrize("expr", ['a{b="c}', "a{b='c'", "rate(a[5m]", "a ; b", "a{b=~`x}"])
def test_unreadable_expressions_raise(expr: str) -> None:
    with pytest.raises(PromQLSyntaxError):
        selectors(expr)


def test_prometheus_rule_is_the_shipped_file_scoped_to_the_platform() -> None:
    groups = load_alert_rules(PLATFORM_RULES)
    shop, other = (prometheus_rule(make(name=n, namespace=ns), groups) for n, ns in (("demo", "shop"), ("b", "other")))
    assert shop["metadata"]["name"] == "demo-alerts" and shop["metadata"]["namespace"] == "shop"
    assert [g["name"] for g in shop["spec"]["groups"]] == [f"{g['name']}.demo" for g in groups]
    source = [rule for group in groups for rule in group["rules"]]
    built = [rule for group in shop["spec"]["groups"] for rule in group["rules"]]
    assert [r["alert"] for r in built] == [r["alert"] for r in source]
    for original, rule in zip(source, built, strict=True):
        assert rule.get("for") == original.get("for") and rule["annotations"] == original["annotations"]
        assert rule["labels"] == {**original["labels"], PLATFORM_LABEL: "demo"}
        assert metric_names(rule["expr"]) == metric_names(original["expr"])
        assert all('namespace="shop"' in s.matchers for s in selectors(rule["expr"])), rule["alert"]
    assert all('namespace="other"' in r["expr"] for g in other["spec"]["groups"] for r in g["rules"])
    assert "namespace=" not in " ".join(r["expr"] for r in source)  # the file itself stays unscoped


def test_load_alert_rules(tmp_path: Path) -> None:
    assert load_alert_rules(None) == [] and load_alert_rules(tmp_path / "missing.yaml") == []
    bad = {
        "not a list": "groups: {}",
        "no name": "groups: [{rules: []}]",
        "no expr": "groups: [{name: g, rules: [{alert: A}]}]",
        "neither": "groups: [{name: g, rules: [{expr: up}]}]",
    }
    for problem, text in bad.items():
        (tmp_path / "rules.yaml").write_text(text)
        with pytest.raises(AlertRulesError):
            load_alert_rules(tmp_path / "rules.yaml")
        assert problem
    (tmp_path / "rules.yaml").write_text("groups: [{name: g, rules: [{alert: A, expr: 'a{b=\"c'}]}]")
    with pytest.raises(PromQLSyntaxError):
        load_alert_rules(tmp_path / "rules.yaml")


@pytest.fixture
def kopf_json_handler() -> Any:
    """A root handler formatted as `kopf run --log-format=json` installs it, removed afterwards."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ObjectJsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler, stream
    root.removeHandler(handler)


def test_operator_logs_are_platform_json_lines(kopf_json_handler: Any) -> None:
    handler, stream = kopf_json_handler
    assert use_platform_format() >= 1 and isinstance(handler.formatter, OperatorJsonFormatter)
    ref = {"apiVersion": "venta.io/v1alpha1", "kind": "VentaPlatform", "name": "demo", "namespace": "shop"}
    with request_scope() as request_id:
        logging.getLogger("venta_operator.test").warning(
            "applied %d children", 3, extra={"k8s_ref": ref, "k8s_skip": False, "settings": kopf.OperatorSettings()}
        )
    logging.getLogger("venta_operator.test").warning("after the pass")
    line, after = (json.loads(text) for text in stream.getvalue().splitlines()[-2:])
    assert after["request_id"] is None and "object" not in after
    assert {"timestamp", "level", "service", "message", "trace_id", "span_id", "request_id"} <= set(line)
    assert (line["service"], line["level"], line["message"]) == ("operator", "WARNING", "applied 3 children")
    assert line["request_id"] == request_id and line["object"] == ref
    assert not {"settings", "k8s_ref", "k8s_skip"} & set(line)


def test_text_logs_stay_text() -> None:
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        use_platform_format()
        assert type(handler.formatter) is logging.Formatter
    finally:
        logging.getLogger().removeHandler(handler)


def test_reconcile_series_exist_before_the_first_reconcile() -> None:
    import venta_operator.metrics  # noqa: F401 - the families and their pre-created series

    for reason in ("InvalidSpec", "ApiError", "apply_failed"):
        assert REGISTRY.get_sample_value("venta_operator_reconcile_failures_total", {"reason": reason}) is not None
    for trigger in ("start", "update", "child", "retry", "timer"):
        assert REGISTRY.get_sample_value("venta_operator_reconciles_total", {"trigger": trigger}) is not None
