"""The log-shipping config (observability/logs/otel-collector.yaml) checked by the OpenTelemetry Collector itself.

tests/cluster/build.sh builds, with the OpenTelemetry Collector Builder, a collector of the version the chart deploys
(logs.collector.image.tag) with exactly the components the config uses (tests/cluster/go/otelcol/builder-config.yaml):

- `otelcol validate` accepts the config, as the chart runs it (its env) and by default; broken variants (a typo'd
  component, an unknown field, an unknown stanza operator, a pipeline naming an undefined exporter, a bad time
  layout) are refused, so the validation really reads every part;
- the collector, run on log files laid out like the kubelet's (/var/log/pods/<ns>_<pod>_<uid>/<container>/0.log, CRI
  lines) and like `venta up`'s (bare JSON lines), with lines written by the services' and the operator's own
  formatters, delivers to Loki's OTLP/HTTP endpoint what Loki indexes: service.name, the namespace/pod/container from
  the path, severity, time, trace and span ids, the message as body, the other fields as attributes. Loki is an
  outside server: the stand-in is an HTTP server parsing the requests with the official OTLP protobuf classes.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import queue
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import SeverityNumber
from opentelemetry.sdk.trace import TracerProvider

from services.devkit.servers import free_port
from services.kit.logging import JsonFormatter
from tests.cluster.cluster_tools import ClusterError, build_tools, stop_process
from tests.support.observability_assets import OBSERVABILITY, ROOT
from venta_operator.logs import OperatorJsonFormatter

CONFIG = OBSERVABILITY / "logs" / "otel-collector.yaml"
MANIFEST = ROOT / "tests" / "cluster" / "go" / "otelcol" / "builder-config.yaml"
CHART_VALUES = ROOT / "charts" / "venta-operator" / "values.yaml"

pytestmark = pytest.mark.timeout(900)  # a cold build.sh builds the collector


@pytest.fixture(scope="module")
def otelcol() -> Path:
    override = os.environ.get("VENTA_OTELCOL")
    if override:
        return Path(override)
    try:
        tools = build_tools(quiet=True)
    except ClusterError as error:
        pytest.fail(f"could not build the collector with tests/cluster/build.sh:\n{error}", pytrace=False)
    assert tools.otelcol is not None, "build.sh lists OTELCOL"
    return tools.otelcol


def validate(otelcol: Path, config: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(otelcol), "validate", f"--config={config}"],
        env={"PATH": os.environ.get("PATH", ""), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_collector_is_the_version_the_chart_deploys(otelcol: Path) -> None:
    tag = yaml.safe_load(CHART_VALUES.read_text())["logs"]["collector"]["image"]["tag"]
    out = subprocess.run([str(otelcol), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.split()[-1] == tag
    assert yaml.safe_load(MANIFEST.read_text())["dist"]["version"] == tag


def test_the_collector_has_exactly_the_components_of_the_config(otelcol: Path) -> None:
    built = yaml.safe_load(subprocess.run([str(otelcol), "components"], capture_output=True, check=True).stdout)
    config = yaml.safe_load(CONFIG.read_text())
    for kind in ("receivers", "processors", "exporters", "extensions"):
        used = {name.split("/")[0] for name in config[kind]}
        assert {c["name"] for c in built[kind]} == used, kind


def test_the_config_passes_the_collectors_validation(otelcol: Path) -> None:
    values = yaml.safe_load(CHART_VALUES.read_text())["logs"]["collector"]
    for env in ({}, {"LOKI_ENDPOINT": values["lokiEndpoint"], "VENTA_LOG_FILES": values["logFiles"]}):
        result = validate(otelcol, CONFIG, env)
        assert result.returncode == 0, result.stderr


# (what is broken, the line of the config, its replacement, what the collector's error names)
MUTATIONS = [
    ("receiver name", "  file_log:\n", "  file_logg:\n", "file_logg"),
    ("receiver field", "    start_at: end\n", "    start_att: end\n", "start_att"),
    ("stanza operator", "type: trace_parser\n", "type: trace_parserr\n", "trace_parserr"),
    ("time layout type", "layout_type: gotime\n", "layout_type: gotimes\n", "gotimes"),
    ("pipeline exporter", "exporters: [otlp_http/loki]", "exporters: [otlp_http/lokii]", "otlp_http/lokii"),
    ("processor field", "    limit_mib: 400\n", "    limit_mb: 400\n", "limit_mb"),
]


@pytest.mark.parametrize(("what", "line", "broken", "named"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_a_broken_config_fails_validation(
    otelcol: Path, tmp_path: Path, what: str, line: str, broken: str, named: str
) -> None:
    source = CONFIG.read_text()
    assert source.count(line) == 1, what
    mutant = tmp_path / "otel-collector.yaml"
    mutant.write_text(source.replace(line, broken))
    result = validate(otelcol, mutant)
    assert result.returncode != 0, f"{what}: the collector accepted {broken.strip()!r}"
    assert named in result.stderr, result.stderr


class Loki(ThreadingHTTPServer):
    """Stands in for Loki's OTLP/HTTP endpoint: parses each export request and queues it."""

    def __init__(self) -> None:
        self.requests: queue.Queue[ExportLogsServiceRequest] = queue.Queue()
        super().__init__(("127.0.0.1", free_port()), LokiHandler)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/otlp"


class LokiHandler(BaseHTTPRequestHandler):
    server: Loki

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if self.path != "/otlp/v1/logs" or self.headers.get("Content-Type") != "application/x-protobuf":
            self.send_error(404)
            return
        request = ExportLogsServiceRequest()
        request.ParseFromString(body)
        self.server.requests.put(request)
        reply = ExportLogsServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def loki() -> Iterator[Loki]:
    server = Loki()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def formatted(formatter: logging.Formatter, level: int, message: str, *, traced: bool) -> dict[str, Any]:
    """A line as the formatter writes it, in a span (trace_id and span_id set) or outside any (both null)."""
    record = logging.LogRecord("venta.test", level, __file__, 1, "%s", (message,), None)
    if not traced:
        return json.loads(formatter.format(record))  # type: ignore[no-any-return]
    with TracerProvider().get_tracer("test").start_as_current_span("request"):
        return json.loads(formatter.format(record))  # type: ignore[no-any-return]


def test_the_collector_ships_what_the_services_write_to_loki(otelcol: Path, loki: Loki, tmp_path: Path) -> None:
    pods = tmp_path / "pods"
    kubelet_file = pods / "venta_gateway-7d9f8_0f1e2d3c-aaaa-bbbb-cccc-123456789abc" / "gateway" / "0.log"
    local_file = tmp_path / "logs" / "operator.log"
    for path in (kubelet_file, local_file):
        path.parent.mkdir(parents=True)
        path.touch()
    health = free_port()
    override = tmp_path / "override.yaml"  # the health port is fixed in the config; tests run side by side
    override.write_text(yaml.safe_dump({"extensions": {"health_check": {"endpoint": f"127.0.0.1:{health}"}}}))
    env = {
        "PATH": os.environ.get("PATH", ""),
        "LOKI_ENDPOINT": loki.endpoint,
        "VENTA_LOG_FILES": f"{tmp_path}/**/*.log",
    }
    log = tmp_path / "otelcol.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(otelcol), f"--config={CONFIG}", f"--config={override}"], env=env, stdout=out, stderr=out
        )
    try:
        ready(health, process, log)
        time.sleep(1)  # start_at: end: lines written before the first poll of a file are not read
        gateway = formatted(JsonFormatter("gateway"), logging.WARNING, "vendor 42 not found", traced=True)
        gateway["request_id"] = "7c1e0000"
        operator = formatted(OperatorJsonFormatter(), logging.ERROR, "reconcile failed", traced=False)
        with kubelet_file.open("a") as f:
            f.write(f"2026-01-01T00:00:00.000000001Z stdout F {json.dumps(gateway)}\n")
            f.write("2026-01-01T00:00:00.000000002Z stderr F Traceback (most recent call last):\n")
        with local_file.open("a") as f:
            f.write(json.dumps(operator) + "\n")
        records = received(loki, 3, process, log)
    finally:
        stop_process(process)

    crash = records.pop("Traceback (most recent call last):")  # not JSON: kept as it is
    assert crash["resource"]["k8s.container.name"] == "gateway"
    got = records["vendor 42 not found"]
    assert got["resource"]["service.name"] == "gateway"
    assert got["resource"]["service.namespace"] == "venta"
    assert got["resource"]["k8s.namespace.name"] == "venta"
    assert got["resource"]["k8s.pod.name"] == "gateway-7d9f8"
    assert got["resource"]["k8s.container.name"] == "gateway"
    assert_parsed(got, gateway, SeverityNumber.SEVERITY_NUMBER_WARN)
    assert got["attributes"]["request_id"] == "7c1e0000"
    got = records["reconcile failed"]
    assert got["resource"]["service.name"] == "operator"
    assert "k8s.pod.name" not in got["resource"]  # a local file: nothing to take from its path
    assert_parsed(got, operator, SeverityNumber.SEVERITY_NUMBER_ERROR)


def assert_parsed(got: dict[str, Any], line: dict[str, Any], severity: int) -> None:
    record = got["record"]
    assert record.severity_number == severity and record.severity_text == line["level"]
    assert record.trace_id.hex() == (line["trace_id"] or "") and record.span_id.hex() == (line["span_id"] or "")
    millis = round(datetime.fromisoformat(line["timestamp"]).timestamp() * 1000)
    assert record.time_unix_nano == millis * 1_000_000
    assert {"service", "message"}.isdisjoint(got["attributes"])  # moved to the resource and the body
    assert got["attributes"]["logger"] == line["logger"]


def ready(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the collector did not become ready:\n{log.read_text()}", pytrace=False)


def received(loki: Loki, count: int, process: subprocess.Popen[bytes], log: Path) -> dict[str, dict[str, Any]]:
    """The first `count` log records Loki receives, by body."""
    records: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 30
    while len(records) < count:
        assert process.poll() is None, log.read_text()
        try:
            request = loki.requests.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            pytest.fail(f"Loki received {sorted(records)} only; the collector's log:\n{log.read_text()}", pytrace=False)
        for resource_logs in request.resource_logs:
            resource = {a.key: value(a.value) for a in resource_logs.resource.attributes}
            for scope in resource_logs.scope_logs:
                for record in scope.log_records:
                    attributes = {a.key: value(a.value) for a in record.attributes}
                    records[value(record.body)] = {"resource": resource, "attributes": attributes, "record": record}
    return records
