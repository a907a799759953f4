"""The log shipping config (observability/logs/otel-collector.yaml) fits together and reads what Venta writes.

No collector binary is needed here (tests/integration/observability/test_otel_collector.py runs the collector's own
validation and the collector itself on this file), so this checks, fast, what would break silently: a pipeline
naming a component that is not defined, an operator routing to a missing id, and the contract with the log format:
the fields the collector parses (time layout, level names, trace context, service) are those that the services' and
the operator's formatters write.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import yaml
from opentelemetry.sdk.trace import TracerProvider

from services.kit.logging import JsonFormatter
from tests.support.observability_assets import OBSERVABILITY
from venta_operator.logs import OperatorJsonFormatter

CONFIG: dict[str, Any] = yaml.safe_load((OBSERVABILITY / "logs" / "otel-collector.yaml").read_text())
OPERATORS = {op["id"]: op for op in CONFIG["receivers"]["file_log"]["operators"]}
# Go's reference time layout 2006-01-02T15:04:05.000Z07:00, as a regular expression.
GO_LAYOUT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$")


def test_pipelines_use_defined_components() -> None:
    for pipeline in CONFIG["service"]["pipelines"].values():
        for section in ("receivers", "processors", "exporters"):
            assert set(pipeline[section]) <= set(CONFIG[section]), section
    assert set(CONFIG["service"]["extensions"]) <= set(CONFIG["extensions"])


def test_operators_route_to_existing_operators() -> None:
    assert len(OPERATORS) == len(CONFIG["receivers"]["file_log"]["operators"])
    for op in OPERATORS.values():
        targets = [op.get("output"), op.get("default"), *(r["output"] for r in op.get("routes", []))]
        assert all(t in OPERATORS for t in targets if t), op["id"]


def test_the_router_tells_cri_lines_from_json_lines() -> None:
    route = re.search(r'matches "(.+)"', OPERATORS["format"]["routes"][0]["expr"])
    assert route is not None
    cri = re.compile(route.group(1))
    assert cri.match('2025-05-01T12:00:00.1Z stdout F {"level": "INFO"}')
    assert not cri.match('{"timestamp": "2025-05-01T12:00:00.123+00:00", "level": "INFO"}')


def lines(formatter: logging.Formatter) -> list[dict[str, Any]]:
    tracer = TracerProvider().get_tracer("test")
    out = []
    for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL):
        record = logging.LogRecord("venta.test", level, __file__, 1, "hello %s", ("world",), None)
        with tracer.start_as_current_span("request"):
            out.append(json.loads(formatter.format(record)))
    return out


def test_the_collector_parses_what_services_and_operator_write() -> None:
    parser = OPERATORS["json"]
    mapped = {str(v) for v in parser["severity"]["mapping"].values()}
    assert (
        parser["timestamp"]["layout_type"] == "gotime"
        and parser["timestamp"]["layout"] == "2006-01-02T15:04:05.000Z07:00"
    )
    for line in lines(JsonFormatter("gateway")) + lines(OperatorJsonFormatter()):
        assert GO_LAYOUT.match(line[parser["timestamp"]["parse_from"].removeprefix("attributes.")]), line
        assert line[parser["severity"]["parse_from"].removeprefix("attributes.")] in mapped, line
        assert re.fullmatch(r"[0-9a-f]{32}", line[OPERATORS["trace"]["trace_id"]["parse_from"].split(".")[1]])
        assert re.fullmatch(r"[0-9a-f]{16}", line[OPERATORS["trace"]["span_id"]["parse_from"].split(".")[1]])
        assert line[OPERATORS["service"]["from"].split(".")[1]] in ("gateway", "operator")
        assert line[OPERATORS["message"]["from"].split(".")[1]] == "hello world"
        assert "request_id" in line
