"""The Grafana dashboards' JSON model, checked the way a dashboard linter would (grafana/dashboard-linter cannot be
built here: the Go module proxy answers 403 for it), so that a dashboard edited by hand or exported from Grafana
still loads through the sidecar and works on any Prometheus data source.

Whether each query returns data is not checked here but over a real Prometheus scraping the real platform
(tests/integration/observability, tests/e2e/operator).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.observability_assets import (
    DASHBOARDS,
    STORE_METRIC_PREFIXES,
    STORES_DASHBOARD,
    Query,
    dashboards,
    panels,
)
from venta_operator.promql import metric_names

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
REQUIRED = {
    "venta-overview.json",
    "venta-service-red.json",
    "venta-events.json",
    "venta-realtime.json",
    "venta-operator.json",
    STORES_DASHBOARD,
}
BUILT_IN = {"__rate_interval", "__interval", "__range", "__all"}
PANEL_TYPES = {"row", "timeseries", "stat", "gauge", "bargauge", "table", "text", "heatmap", "state-timeline"}
BOARDS = dashboards()


def test_the_dashboards_are_shipped() -> None:
    assert set(BOARDS) == REQUIRED
    uids = [board["uid"] for board in BOARDS.values()]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_dashboard_metadata(name: str) -> None:
    board = BOARDS[name]
    assert board["uid"] == name.removesuffix(".json") and len(board["uid"]) <= 40
    assert board["title"].startswith("Venta / ") and board.get("description")
    assert "venta" in board["tags"]
    assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 36
    assert "id" not in board or board["id"] is None  # an id would clash with the Grafana it is imported into
    assert board["time"]["from"].startswith("now-") and board["refresh"]
    assert (DASHBOARDS / name).read_text().endswith("\n")


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_datasource_is_a_templated_variable(name: str) -> None:
    variables = BOARDS[name]["templating"]["list"]
    first = variables[0]
    assert (first["name"], first["type"], first["query"]) == ("datasource", "datasource", "prometheus")
    for variable in variables[1:]:
        assert variable["type"] == "query" and variable["datasource"] == DATASOURCE, variable["name"]
        assert variable["includeAll"] and variable["allValue"] == ".*", variable["name"]
    for panel in panels(BOARDS[name]):
        if panel["type"] != "row":
            assert panel["datasource"] == DATASOURCE, panel["title"]
            assert all(target["datasource"] == DATASOURCE for target in panel["targets"]), panel["title"]


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_panels_are_complete_and_do_not_overlap(name: str) -> None:
    seen_ids: set[int] = set()
    cells: dict[tuple[int, int], str] = {}
    for panel in panels(BOARDS[name]):
        title = panel.get("title")
        assert title and panel["type"] in PANEL_TYPES, title
        assert panel["id"] not in seen_ids, f"duplicate panel id {panel['id']}"
        seen_ids.add(panel["id"])
        pos = panel["gridPos"]
        assert all(isinstance(pos[k], int) for k in ("h", "w", "x", "y")) and pos["x"] + pos["w"] <= 24, title
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{title} overlaps {cells[(x, y)]}"
                cells[(x, y)] = title
        if panel["type"] == "row":
            continue
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{title}: no unit"
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)) and all(refs), title
        assert all(target.get("expr", "").strip() for target in panel["targets"]), title


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_queries_use_defined_variables_and_venta_metrics(name: str) -> None:
    board: dict[str, Any] = BOARDS[name]
    defined = {v["name"] for v in board["templating"]["list"]} | BUILT_IN
    # The stores' dashboard reads the exporters', the kubelet's and kube-state-metrics' series, and targets' `up`.
    prefixes = ("venta_", *STORE_METRIC_PREFIXES) if name == STORES_DASHBOARD else ("venta_",)
    for variable in board["templating"]["list"][1:]:
        assert metric_names(variable["query"]["query"].removeprefix("label_values(").rsplit(",", 1)[0])
    for panel in panels(board):
        for target in panel.get("targets", []):
            used = set(re.findall(r"\$\{?(\w+)", target["expr"]))
            assert used <= defined, f"{panel['title']}: undefined {used - defined}"
            names = metric_names(target["expr"])
            assert names and all(n.startswith(prefixes) for n in names), f"{panel['title']}: {names}"
            assert "[$__rate_interval]" in target["expr"] or "rate(" not in target["expr"], panel["title"]
            Query(name, target["expr"]).concrete()  # every variable has a value
