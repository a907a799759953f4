"""One trace through the whole local platform, as production exports it.

`venta up` runs every service as its own process, exporting over OTLP/gRPC to an in-memory collector on a random
port (`services.devkit.otlp_sink`), on real PostgreSQL, Redis (the session's) and NATS (this test's own, so no
other test's events reach this search sync). A vendor created through the HTTP gateway must come back as one tree:
gateway server span -> gRPC client -> vendor service server span -> its SQL -> the outbox relay's publish span ->
search sync's consume span -> the index write. Logs of that request carry the same trace id.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.cli.registry import SERVICES
from services.devkit.otlp_sink import OtlpReceiver, ReceivedSpan
from services.devkit.servers import Nats, Postgres, Redis
from tests.support import venta_up

ROOT = Path(__file__).resolve().parents[3]
TRACED = ["vendors", "users", "location", "identity", "gateway", "search-sync"]


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[Nats]:
    with Nats(tmp_path / "nats") as server:
        yield server  # type: ignore[misc]


def _is_db(span: ReceivedSpan) -> bool:
    return span.kind == "CLIENT" and "postgresql" in (
        span.attributes.get("db.system"),
        span.attributes.get("db.system.name"),
    )


def _statement(span: ReceivedSpan) -> str:
    return str(span.attributes.get("db.statement") or span.attributes.get("db.query.text") or "")


def _ancestors(span: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> list[ReceivedSpan]:
    chain = []
    while span.parent_span_id in by_id:
        span = by_id[span.parent_span_id]
        chain.append(span)
    return chain


def _one(spans: list[ReceivedSpan], service: str, kind: str, name: str) -> ReceivedSpan:
    found = [s for s in spans if s.service == service and s.kind == kind and s.name == name]
    assert len(found) == 1, (service, kind, name, [(s.service, s.kind, s.name) for s in spans])
    return found[0]


def _complete(spans: list[ReceivedSpan]) -> bool:
    """Every span of the trace has arrived: search sync wrote the index, and no span's parent is missing."""
    ids = {s.span_id for s in spans}
    consumed = [s for s in spans if s.service == "search-sync" and s.kind == "CONSUMER"]
    indexed = [
        s
        for s in spans
        if s.service == "search-sync" and _is_db(s) and s.parent_span_id in {c.span_id for c in consumed}
    ]
    return bool(indexed) and all(s.parent_span_id in ids for s in spans if s.parent_span_id)


@pytest.mark.slow
async def test_one_trace_from_the_gateway_to_search_sync(
    tmp_path: Path, postgres: Postgres, redis_server: Redis, own_nats: Nats, receiver: OtlpReceiver
) -> None:
    offset = venta_up.free_port_offset(TRACED)
    env = {
        **os.environ,
        "VENTA_LOG_LEVEL": "DEBUG",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
    }
    env.pop("OTEL_SDK_DISABLED", None)
    data = tmp_path / "data"
    proc = await asyncio.to_thread(
        venta_up.start,
        data,
        offset,
        "--postgres-url",
        postgres.url,
        "--nats-url",
        own_nats.url,
        "--redis-url",
        redis_server.url,
        "--only",
        *TRACED,
        env=env,
    )
    try:
        await asyncio.to_thread(venta_up.wait_up, proc)
        identity = f"http://127.0.0.1:{SERVICES['identity'].http_port + offset}"
        gateway = f"http://127.0.0.1:{SERVICES['gateway'].http_port + offset}"
        async with httpx.AsyncClient(timeout=15) as client:
            minted = await client.post(f"{identity}/v1/tokens", json={"user": "user_traced_taco_owner"})
            assert minted.status_code == 200, minted.text
            created = await client.post(
                f"{gateway}/v1/vendors",
                json={"name": "Traced Tacos"},
                headers={"Authorization": f"Bearer {minted.json()['token']}"},
            )
        assert created.status_code == 201, created.text
        request_id = created.headers["x-request-id"]

        def roots(r: OtlpReceiver) -> list[ReceivedSpan]:
            return [
                s
                for s in r.spans
                if s.service == "gateway" and s.kind == "SERVER" and s.attributes.get("venta.request_id") == request_id
            ]

        await receiver.wait_for(lambda r: bool(roots(r)), what="gateway server span")
        trace_id = roots(receiver)[0].trace_id
        await receiver.wait_for(lambda r: _complete(r.trace(trace_id)), what="complete trace")
        await asyncio.sleep(0.5)  # late siblings (the gateway's own cache-invalidation consumer)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = await asyncio.to_thread(proc.communicate, timeout=90)
    assert proc.returncode == 0, out

    spans = receiver.trace(trace_id)
    by_id = {s.span_id: s for s in spans}
    assert all(s.parent_span_id in by_id for s in spans if s.parent_span_id), "one tree, no dangling parent"
    (root,) = [s for s in spans if not s.parent_span_id]
    assert (root.service, root.kind, root.name) == ("gateway", "SERVER", "POST /v1/vendors")

    grpc_call = _one(spans, "gateway", "CLIENT", "/venta.vendor.v1.VendorService/CreateVendor")
    assert root in _ancestors(grpc_call, by_id)
    served = _one(spans, "vendors", "SERVER", "/venta.vendor.v1.VendorService/CreateVendor")
    assert served.parent_span_id == grpc_call.span_id

    writes = [s for s in spans if s.service == "vendors" and _is_db(s)]
    assert any(_statement(s).startswith("INSERT INTO vendor") for s in writes), [_statement(s) for s in writes]
    assert any("event_outbox" in _statement(s) for s in writes)
    assert all(served in _ancestors(s, by_id) for s in writes)

    publish = _one(spans, "vendors", "PRODUCER", "publish events.vendor.created")
    assert served in _ancestors(publish, by_id), "the relay continues the context stored with the outbox row"
    assert publish.attributes["messaging.system"] == "nats"
    consume = _one(spans, "search-sync", "CONSUMER", "process events.vendor.created")
    assert consume.parent_span_id == publish.span_id
    index_writes = [s for s in spans if s.service == "search-sync" and _is_db(s)]
    assert index_writes and all(s.parent_span_id == consume.span_id for s in index_writes)
    assert {"gateway", "vendors", "search-sync"} <= {s.service for s in spans}

    # probes and the relay's polling start no trace of their own
    everything = receiver.spans
    assert not [s for s in everything if "grpc.health" in s.name or s.name.startswith("GET /health")]
    assert not [s for s in everything if "pg_try_advisory_xact_lock" in _statement(s) or _statement(s) == "SELECT 1"]

    # the request's log lines carry its trace
    for service in ("gateway", "vendors"):
        lines = [
            json.loads(line)
            for line in (data / "logs" / f"{service}.log").read_text().splitlines()
            if line.startswith("{")
        ]
        mine = [line for line in lines if line.get("request_id") == request_id]
        assert mine, f"no log line of {service} has request id {request_id}"
        assert {line["trace_id"] for line in mine} == {trace_id}, mine
        assert all(line["span_id"] in by_id for line in mine)
