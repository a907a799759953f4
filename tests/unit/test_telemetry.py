"""Tracing set-up from the standard variables, the bounded metric labels and exemplars, and the span tree the event
bus builds around a message (publish as a child of the stored context, processing as a child of the headers)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from services.event_catalog import UserData
from services.kit import metrics, telemetry
from services.kit.events.bus import Event
from services.kit.events.envelope import new_envelope
from services.kit.events.tracing import context_from, current_headers, end_span, processing, start_publish


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    telemetry.configure_tracing("test", extra_processor=SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


def _event(headers: dict[str, str]) -> Event:
    data = UserData(clerk_id="user_1", user_id=str(uuid.uuid4()), timestamp=datetime.now(UTC))
    envelope = new_envelope("user.created", data, version=1)
    return Event(envelope, data, envelope.subject, headers, 1, 1)


def _only(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    (span,) = [s for s in exporter.get_finished_spans() if s.name == name]
    return span


def test_sampler_comes_from_the_standard_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "venta-vendors")
    provider = telemetry.new_provider("vendors")
    assert provider.sampler.get_description().startswith("ParentBased{root:TraceIdRatioBased{0.25}")
    assert provider.resource.attributes["service.name"] == "venta-vendors"


def test_disabled_sdk_installs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not telemetry.tracing_enabled()
    assert telemetry.grpc_server_interceptors() == [] and telemetry.grpc_client_interceptors() == []
    try:
        telemetry.instrument_process("svc", metrics_enabled=False)
        assert not metrics.enabled()
    finally:
        metrics.set_enabled(True)


async def caller() -> str:
    return "someone"


async def test_fastapi_apps_trace_one_server_span_per_request_and_leave_probes_alone(
    spans: InMemorySpanExporter,
) -> None:
    app = FastAPI(telemetry=telemetry.fastapi_telemetry())

    @app.get("/things/{thing_id:int}")
    async def thing(thing_id: int, who: Annotated[str, Depends(caller)]) -> dict[str, object]:
        return {"id": thing_id, "who": who}

    for probe in ("/health", "/health/ready", "/health/events", "/metrics", "/metrics/"):
        app.get(probe)(caller)
    trace_id = uuid.uuid4().hex
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edge") as client:
        answer = await client.get("/things/7", headers={"traceparent": f"00-{trace_id}-{'ab' * 8}-01"})
        assert answer.json() == {"id": 7, "who": "someone"}
        for probe in ("/health", "/health/ready", "/health/events", "/metrics", "/metrics/"):
            assert (await client.get(probe, headers={"traceparent": f"00-{trace_id}-{'cd' * 8}-01"})).is_success
        unmatched = uuid.uuid4().hex
        assert (
            await client.get("/things/seven", headers={"traceparent": f"00-{unmatched}-{'ef' * 8}-01"})
        ).status_code == 404
    mine = [s for s in spans.get_finished_spans() if s.context.trace_id == int(trace_id, 16)]
    # one span, the server's, named by route template; no span per dependency, endpoint or probe
    assert [(s.name, s.kind) for s in mine] == [("GET /things/{thing_id}", SpanKind.SERVER)]
    assert mine[0].attributes is not None and mine[0].attributes["http.route"] == "/things/{thing_id}"
    assert mine[0].parent is not None and mine[0].parent.span_id == int("ab" * 8, 16)
    # no route matched: no template to name the span by (the raw path would make span names unbounded)
    (lost,) = [s for s in spans.get_finished_spans() if s.context.trace_id == int(unmatched, 16)]
    assert lost.name == "GET" and lost.attributes is not None and lost.attributes["http.response.status_code"] == 404


def test_grpc_interceptors_skip_health_and_reflection() -> None:
    (server,) = telemetry.grpc_server_interceptors()
    details = type("Details", (), {"method": "/grpc.health.v1.Health/Check", "invocation_metadata": ()})()
    assert not server._filter(details)
    details.method = "/venta.vendor.v1.VendorService/GetVendorById"
    assert server._filter(details)
    details.method = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
    assert not server._filter(details)
    details.method = b"/grpc.health.v1.Health/Watch"  # grpc.aio client call details carry bytes
    assert not server._filter(details)
    details.method = b"/venta.user.v1.UserService/GetUserVendors"
    assert server._filter(details)


def test_http_method_label_is_bounded() -> None:
    assert [metrics.method_label(m) for m in ("GET", "DELETE", "BREW", "get", "x" * 500)] == [
        "GET",
        "DELETE",
        "_OTHER",
        "_OTHER",
        "_OTHER",
    ]


def test_exemplar_only_for_a_sampled_span(spans: InMemorySpanExporter) -> None:
    assert metrics.trace_exemplar() is None
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("sampled") as span:
        exemplar = metrics.trace_exemplar()
        context = span.get_span_context()
    assert exemplar == {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}
    unsampled = propagate.extract({"traceparent": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-00"})
    with tracer.start_as_current_span("not sampled", context=unsampled):
        assert metrics.trace_exemplar() is None


def test_publish_span_continues_the_stored_context_and_processing_continues_the_headers(
    spans: InMemorySpanExporter,
) -> None:
    with trace.get_tracer("test").start_as_current_span("request") as request:
        stored = current_headers()  # what the outbox row keeps
    publish, headers = start_publish("events.user.created", "m-1", parent=context_from(stored))
    end_span(publish)
    with (
        processing([_event(headers)], consumer="c", subject="events.user.>"),
        trace.get_tracer("test").start_as_current_span("index write"),
    ):
        pass

    sent, handled, write = (
        _only(spans, n) for n in ("publish events.user.created", "process events.user.created", "index write")
    )
    assert sent.kind is SpanKind.PRODUCER and handled.kind is SpanKind.CONSUMER
    assert sent.context.trace_id == handled.context.trace_id == request.get_span_context().trace_id
    assert sent.parent is not None and sent.parent.span_id == request.get_span_context().span_id
    assert handled.parent is not None and handled.parent.span_id == sent.context.span_id
    assert write.parent is not None and write.parent.span_id == handled.context.span_id
    assert sent.attributes is not None and sent.attributes["messaging.message.id"] == "m-1"


def test_a_batch_gets_one_span_and_each_message_its_own_child(spans: InMemorySpanExporter) -> None:
    tracer = trace.get_tracer("test")
    parents, events = [], []
    for _ in range(3):
        with tracer.start_as_current_span("publisher") as parent:
            parents.append(parent.get_span_context())
            events.append(_event(current_headers()))
    with pytest.raises(RuntimeError), processing(events, consumer="c", subject="events.user.>"):
        raise RuntimeError("backend down")

    batch = _only(spans, "process events.user.>")
    assert {link.context.span_id for link in batch.links} == {p.span_id for p in parents}
    per_message = [s for s in spans.get_finished_spans() if s.name == "process events.user.created"]
    assert sorted(s.parent.span_id for s in per_message if s.parent) == sorted(p.span_id for p in parents)
    assert all(s.context.trace_id in {p.trace_id for p in parents} for s in per_message)
    assert all([link.context.span_id for link in s.links] == [batch.context.span_id] for s in per_message)
    assert all(s.status.status_code is StatusCode.ERROR for s in [batch, *per_message])


def test_a_message_without_context_starts_a_trace(spans: InMemorySpanExporter) -> None:
    with processing([_event({})], consumer="c", subject="events.user.>"):
        pass
    handled = _only(spans, "process events.user.created")
    assert handled.parent is None
