"""The example manifests in docs/examples parse into platforms (the e2e suite applies them to a real API server)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from venta_operator.plan import Facts, desired
from venta_operator.spec import platform_from

EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "docs" / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_builds_a_full_plan(path: Path) -> None:
    body = yaml.safe_load(path.read_text())
    body["metadata"]["namespace"] = "example"
    p = platform_from(body)
    plan = desired(p, Facts(uid="u", postgres_ready=True, migration_complete=True, services_ready=True))
    assert plan.stage == "seeding"
    assert {m["kind"] for m in plan.apply} >= {"Deployment", "Service", "ConfigMap", "Job"}


def test_there_are_examples() -> None:
    assert {p.name for p in EXAMPLES} >= {"minimal.yaml", "production.yaml"}
