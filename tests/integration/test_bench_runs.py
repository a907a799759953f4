"""The benchmarks keep working: `python -m bench --short` runs each in its quick configuration and writes its rows.

Through the harness, so what is tested is what `python -m bench` runs: each benchmark as `python bench/<name>.py`,
its figures read back into the table. Speed is not asserted (these machines are shared); the rows, their peers
and the benchmarks' own checks (every delivery arrived, spans were exported) are. operator_scale and
real_node_platform need a cluster and a real node: their tests are the e2e suites they reuse.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def harness(tmp_path: Path, *names: str, timeout: float = 280) -> tuple[str, Path]:
    """Run the harness on `names`, short; the table it wrote, and its logs directory."""
    table, logs = tmp_path / "performance.md", tmp_path / "logs"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--short", "--only", *names, "--output", str(table), "--logs", str(logs)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = done.stdout + done.stderr
    for name in names:
        log = logs / f"{name}.log"
        output += f"\n--- {log}\n" + (log.read_text() if log.exists() else "(none)")
    assert done.returncode == 0, output
    return table.read_text(), logs


@pytest.fixture(scope="module", autouse=True)
def load_generators() -> None:
    """ghz and vegeta must be built: fail (never skip) saying how to build them."""
    done = subprocess.run([sys.executable, "-m", "bench", "--check-tools"], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(done.stdout + done.stderr)


def rows(table: str, benchmark: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in table.splitlines()
        if line.startswith(f"| `{benchmark}` |")
    ]


def test_grpc_get_vendor(tmp_path: Path) -> None:
    table, _ = harness(tmp_path, "grpc_get_vendor")
    figures = {row[1]: row for row in rows(table, "grpc_get_vendor")}
    venta = figures["GetVendorById: vendor service (`venta serve vendors`)"]
    assert "req/s" in venta[2] and venta[3].startswith("bare grpc.aio + asyncpg:"), venta
    assert venta[5] == ">= 0.8x, p99 within 2 ms" and venta[6] in ("met", "not met"), venta
    assert figures["GetVendorById: bare grpc.aio + asyncpg (peer)"][3].startswith("PostgreSQL (pgbench):")
    assert "queries/s" in figures["PostgreSQL: the same query, prepared (pgbench)"][2]
    assert "## How each benchmark ran" in table and "placement" in table
    assert "(short mode" in table and "CPUs (`nproc`)" in table
    assert "tracing: OpenTelemetry on, 0.1 of the traces recorded" in table  # as the operator deploys it


def test_grpc_update_vendor(tmp_path: Path) -> None:
    table, _ = harness(tmp_path, "grpc_update_vendor")  # refused unless every call wrote its event to the outbox
    figures = {row[1]: row for row in rows(table, "grpc_update_vendor")}
    venta = figures["UpdateVendor: vendor service (`venta serve vendors`)"]
    assert "req/s" in venta[2] and venta[3].startswith("bare grpc.aio + asyncpg:"), venta
    assert venta[5] == ">= 0.6x" and venta[6] in ("met", "not met"), venta
    assert figures["UpdateVendor: bare grpc.aio + asyncpg (peer)"][3].startswith("PostgreSQL (pgbench):")
    (limit,) = [row for name, row in figures.items() if name.startswith("PostgreSQL: the same transaction")]
    assert "transactions/s" in limit[2], limit


def test_gateway_read(tmp_path: Path) -> None:
    table, _ = harness(tmp_path, "gateway_read")
    figures = rows(table, "gateway_read")
    assert [row[1].split(" (")[0] for row in figures] == [
        "GET vendor, cached: gateway",
        "GET vendor, cold: gateway",
    ], figures
    cached, cold = figures
    assert cached[3].startswith("bare FastAPI + Redis:") and cached[5] == ">= 0.8x", cached
    assert cold[3].startswith("bare FastAPI + asyncpg:") and cold[5] == ">= 0.6x", cold
    assert "misses)" in cold[1], cold  # the gateway's own count of cache misses in the cold row


def test_events_pipeline(tmp_path: Path) -> None:
    table, logs = harness(tmp_path, "events_pipeline")
    assert "dead-lettered 0" in (logs / "events_pipeline.log").read_text()  # nothing lost on the way
    names = [row[1] for row in rows(table, "events_pipeline")]
    assert names == [
        "vendor change -> search index (UpdateVendor, outbox, relay, search sync)",
        "search sync alone (JetStream -> index)",
        "change -> searchable at 100 changes/s",
    ], table


def test_websocket_fanout(tmp_path: Path) -> None:
    table, logs = harness(tmp_path, "websocket_fanout")
    assert "delivered 200/200" in (logs / "websocket_fanout.log").read_text()  # both rounds, every delivery
    (row,) = rows(table, "websocket_fanout")
    assert row[3].startswith("bare python-socketio:") and row[4].endswith("x"), row
    assert "peak RSS" in row[2] and "peak RSS" in row[3], row  # each server's memory beside its latency


def test_observability_cost(tmp_path: Path) -> None:
    table, logs = harness(tmp_path, "observability_cost")
    assert [row[1] for row in rows(table, "observability_cost")] == [
        "GET vendor, cold (miss): tracing + metrics on",
        "GET vendor, cached (Redis): tracing + metrics on",
    ], table
    printed = (logs / "observability_cost.log").read_text()
    exported = int(printed.split("collector: received ", 1)[1].split(" ", 1)[0])
    assert exported > 0, "the traced platform exported its spans"
