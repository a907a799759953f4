"""The rule files pass promtool (check and unit tests), the unit tests really pin every alert, and the operator's
scoping of the platform rules is exactly what Prometheus's own tooling does.

- `promtool check rules` and `promtool test rules` over observability/rules;
- mutations: with an alert's expression replaced by one that never fires, and by one that always fires, its
  promtool tests must fail, so every alert has a case where it fires and a case where it stays silent;
- the operator adds `namespace="<ns>"` to every selector with its own lexer (venta_operator.promql): the result
  must equal `promtool promql label-matchers set` (both printed by promtool's formatter), and the PrometheusRule
  the operator builds must itself pass `promtool check rules`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.prometheus_process import binaries
from tests.support.observability_assets import PLATFORM_RULES, RULES, STORE_RULES, rule_groups
from venta_operator.builders.monitoring import prometheus_rule
from venta_operator.config import load_alert_rules
from venta_operator.promql import with_matcher
from venta_operator.spec import Platform, parse_spec

RULE_FILES = sorted(RULES.glob("*.yaml"))
TEST_FILES = sorted((RULES / "tests").glob("*.yaml"))


@pytest.fixture(scope="module")
def promtool() -> Path:
    return binaries()[1]


def run(promtool: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(promtool), *map(str, args)], capture_output=True, text=True, timeout=60, check=False)


def test_rule_files_pass_promtool_check(promtool: Path) -> None:
    assert RULE_FILES and TEST_FILES
    result = run(promtool, "check", "rules", *RULE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_FILES)


def test_local_prometheus_config_passes_promtool_check(promtool: Path) -> None:
    result = run(promtool, "check", "config", RULES.parent / "prometheus" / "venta-up.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass(promtool: Path) -> None:
    result = run(promtool, "test", "rules", *TEST_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rule_file_has_its_unit_tests() -> None:
    tested = {rule_file for test in TEST_FILES for rule_file in yaml.safe_load(test.read_text())["rule_files"]}
    assert {f"../{path.name}" for path in RULE_FILES} == tested


def alerts() -> list[tuple[Path, str]]:
    return [
        (path, rule["alert"])
        for path in RULE_FILES
        for group in rule_groups(path)
        for rule in group["rules"]
        if "alert" in rule
    ]


@pytest.mark.parametrize(("path", "alert"), alerts(), ids=[alert for _, alert in alerts()])
def test_the_unit_tests_fail_when_an_alert_never_or_always_fires(
    promtool: Path, tmp_path: Path, path: Path, alert: str
) -> None:
    shutil.copytree(RULES, tmp_path / "rules")
    tests = [
        tmp_path / "rules" / "tests" / test.name
        for test in TEST_FILES
        if f"../{path.name}" in yaml.safe_load(test.read_text())["rule_files"]
    ]
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    rule = next(r for g in document["groups"] for r in g["rules"] if r.get("alert") == alert)
    for mutant in ("vector(0) > 1", "vector(1)"):  # never fires; always fires, without the expected labels
        rule["expr"] = mutant
        (tmp_path / "rules" / path.name).write_text(yaml.safe_dump(document))
        result = run(promtool, "test", "rules", *tests)
        assert result.returncode != 0, f"{alert} with `{mutant}` still passes its tests:\n{result.stdout}"
        assert alert in result.stdout + result.stderr


def platform(namespace: str = "shop") -> Platform:
    return Platform(name="venta", namespace=namespace, spec=parse_spec({"version": "1.0.0"}))


@pytest.mark.parametrize("group", rule_groups(PLATFORM_RULES) + rule_groups(STORE_RULES), ids=lambda g: g["name"])
def test_operator_scoping_equals_promtool_label_matchers_set(promtool: Path, group: dict[str, Any]) -> None:
    for rule in group["rules"]:
        ours = run(promtool, "--experimental", "promql", "format", with_matcher(rule["expr"], "namespace", "shop"))
        theirs = run(promtool, "--experimental", "promql", "label-matchers", "set", rule["expr"], "namespace", "shop")
        assert theirs.returncode == 0 and ours.returncode == 0, theirs.stderr + ours.stderr
        assert ours.stdout == theirs.stdout, rule["alert"]


def test_operator_prometheus_rule_passes_promtool(promtool: Path, tmp_path: Path) -> None:
    groups = load_alert_rules(PLATFORM_RULES) + load_alert_rules(STORE_RULES)
    built = prometheus_rule(platform("shop"), groups)
    (tmp_path / "built.yaml").write_text(yaml.safe_dump({"groups": built["spec"]["groups"]}))
    result = run(promtool, "check", "rules", tmp_path / "built.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    source = [r["alert"] for g in rule_groups(PLATFORM_RULES) + rule_groups(STORE_RULES) for r in g["rules"]]
    assert [r["alert"] for g in built["spec"]["groups"] for r in g["rules"]] == source
