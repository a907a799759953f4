"""Tracing set-up from the standard variables, the bounded metric labels and exemplars, and the span tree the event
bus builds around a message (publish as a child of the stored context, processing as a child of the headers)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

import grpc
import httpx
import pytest
from fastapi import Depends, FastAPI
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from services.event_catalog import UserData
from services.kit import metrics, telemetry
from services.kit.errors import NotFound
from services.kit.events.bus import Event
from services.kit.events.envelope import new_envelope
from services.kit.events.tracing import context_from, current_headers, end_span, processing, start_publish
from services.kit.grpc.client import PeerClient, PeerUnavailable, RemoteError, make_breaker
from services.kit.grpc.interceptors import ServerInterceptor
from services.kit.http.handlers import install_error_handlers, render_error
from services.kit.http.middleware import RequestContextMiddleware


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


def _in_trace(exporter: InMemorySpanExporter, trace_id: str) -> list[ReadableSpan]:
    """The finished spans of one trace (its id in hex, as a `traceparent` carries it)."""
    return [s for s in exporter.get_finished_spans() if s.context.trace_id == int(trace_id, 16)]


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
    assert telemetry.grpc_tracer() is None
    try:
        telemetry.instrument_process("svc", metrics_enabled=False)
        assert not metrics.enabled()
    finally:
        metrics.set_enabled(True)


async def caller() -> str:
    return "someone"


def _kit_app() -> FastAPI:
    """A FastAPI app built as the platform's are: FastAPI's telemetry off, the kit's request middleware outermost."""
    app = FastAPI(telemetry=telemetry.fastapi_telemetry())
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, service="test", on_error=render_error)
    return app


async def test_http_apps_trace_one_server_span_per_request_and_leave_probes_alone(
    spans: InMemorySpanExporter,
) -> None:
    app = _kit_app()
    seen: list[trace.SpanContext] = []

    @app.get("/things/{thing_id:int}")
    async def thing(thing_id: int, who: Annotated[str, Depends(caller)]) -> dict[str, object]:
        seen.append(trace.get_current_span().get_span_context())
        return {"id": thing_id, "who": who}

    for probe in ("/health", "/health/ready", "/health/events", "/metrics", "/metrics/"):
        app.get(probe)(caller)
    trace_id = uuid.uuid4().hex
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edge:8080") as client:
        answer = await client.get(
            "/things/7", headers={"traceparent": f"00-{trace_id}-{'ab' * 8}-01", "x-request-id": "req-1"}
        )
        assert answer.json() == {"id": 7, "who": "someone"}
        for probe in ("/health", "/health/ready", "/health/events", "/metrics", "/metrics/"):
            assert (await client.get(probe, headers={"traceparent": f"00-{trace_id}-{'cd' * 8}-01"})).is_success
        unmatched = uuid.uuid4().hex
        assert (
            await client.get("/things/seven", headers={"traceparent": f"00-{unmatched}-{'ef' * 8}-01"})
        ).status_code == 404
    mine = _in_trace(spans, trace_id)
    # one span, the server's, named by route template; no span per dependency, endpoint or probe
    assert [(s.name, s.kind) for s in mine] == [("GET /things/{thing_id}", SpanKind.SERVER)]
    assert mine[0].parent is not None and mine[0].parent.span_id == int("ab" * 8, 16)
    assert seen == [mine[0].context]  # the handler ran inside it
    assert dict(mine[0].attributes or {}) == {
        "http.request.method": "GET",
        "url.scheme": "http",
        "url.path": "/things/7",
        "network.protocol.version": "1.1",
        "server.address": "edge",
        "server.port": 8080,
        "client.address": "127.0.0.1",
        "user_agent.original": f"python-httpx/{httpx.__version__}",
        "venta.request_id": "req-1",
        "http.route": "/things/{thing_id}",
        "http.response.status_code": 200,
    }
    assert mine[0].status.status_code is StatusCode.UNSET
    # no route matched: no template to name the span by (the raw path would make span names unbounded)
    (lost,) = _in_trace(spans, unmatched)
    assert lost.name == "GET" and lost.attributes is not None and lost.attributes["http.response.status_code"] == 404
    assert "http.route" not in lost.attributes and lost.status.status_code is StatusCode.UNSET


async def test_http_server_spans_of_failures_unsampled_requests_and_garbage_trace_headers(
    spans: InMemorySpanExporter,
) -> None:
    app = _kit_app()
    seen: list[trace.SpanContext] = []

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaput")

    @app.get("/quiet")
    async def quiet() -> dict[str, str]:
        seen.append(trace.get_current_span().get_span_context())
        return {}

    failed, unsampled = uuid.uuid4().hex, uuid.uuid4().hex
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://[::1]:9000") as client:
        answer = await client.get("/boom", headers={"traceparent": f"00-{failed}-{'ab' * 8}-01"})
        assert answer.status_code == 500 and answer.json()["error"]["code"] == "INTERNAL_ERROR"
        assert (await client.get("/quiet", headers={"traceparent": f"00-{unsampled}-{'ab' * 8}-00"})).is_success
        for garbage in ("00-zz-yy-01", "", "00-" + "0" * 32 + "-" + "ab" * 8 + "-01", "x" * 4000):
            assert (await client.get("/quiet", headers={"traceparent": garbage})).is_success
        odd = uuid.uuid4().hex
        answer = await client.request("BREW", "/quiet", headers={"traceparent": f"00-{odd}-{'ab' * 8}-01"})
        assert answer.status_code == 405
    # an exception nobody handled: the generic answer, and the span says what happened
    (broken,) = _in_trace(spans, failed)
    assert broken.name == "GET /boom" and broken.status.status_code is StatusCode.ERROR
    assert broken.attributes is not None and broken.attributes["error.type"] == "RuntimeError"
    assert broken.attributes["server.address"] == "::1" and broken.attributes["server.port"] == 9000
    assert [e.name for e in broken.events] == ["exception"]
    # unsampled: the handler runs in the caller's trace (log lines and the next hop carry it), nothing is exported
    assert (seen[0].trace_id, seen[0].trace_flags.sampled) == (int(unsampled, 16), False)
    assert not _in_trace(spans, unsampled)
    # a traceparent that is not one starts a new trace instead of failing the request
    assert len({c.trace_id for c in seen[1:]}) == 4 and int(unsampled, 16) not in {c.trace_id for c in seen[1:]}
    assert all(c.is_valid for c in seen[1:])
    # a method nobody knows: bounded in the span's name and attributes, the original kept
    (brewed,) = _in_trace(spans, odd)
    assert brewed.name == "HTTP /quiet" and brewed.attributes is not None
    assert brewed.attributes["http.request.method"] == "_OTHER"
    assert brewed.attributes["http.request.method_original"] == "BREW"


async def _serve(behaviour: Any) -> tuple[grpc.aio.Server, int]:
    """A grpc.aio server with the kit's interceptor: `/test.Echo/Say` (bytes in, bytes out) and the health service."""
    server = grpc.aio.server(interceptors=[ServerInterceptor("echo", telemetry.grpc_tracer())])
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("test.Echo", {"Say": grpc.unary_unary_rpc_method_handler(behaviour)})]
    )
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)  # type: ignore[attr-defined]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


async def test_grpc_servers_trace_one_span_per_call_and_leave_health_checks_alone(spans: InMemorySpanExporter) -> None:
    async def say(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        if request == b"missing":
            raise NotFound("no such thing")
        if request == b"broken":
            raise RuntimeError("a bug")
        return request

    server, port = await _serve(say)
    traces = {name: uuid.uuid4().hex for name in ("ok", "missing", "broken", "health")}
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary("/test.Echo/Say")
            for name, trace_id in traces.items():
                metadata = (("traceparent", f"00-{trace_id}-{'ab' * 8}-01"),)
                if name == "health":
                    await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), metadata=metadata)
                    continue
                request = b"hello" if name == "ok" else name.encode()
                try:
                    assert await call(request, metadata=metadata) == request
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() is {"missing": grpc.StatusCode.NOT_FOUND}.get(name, grpc.StatusCode.INTERNAL)
    finally:
        await server.stop(None)

    def traced(name: str) -> list[ReadableSpan]:
        return _in_trace(spans, traces[name])

    (ok,) = traced("ok")
    assert (ok.name, ok.kind) == ("/test.Echo/Say", SpanKind.SERVER)
    assert ok.parent is not None and ok.parent.span_id == int("ab" * 8, 16)
    attributes = dict(ok.attributes or {})
    assert attributes["rpc.system"] == "grpc" and attributes["rpc.service"] == "test.Echo"
    assert attributes["rpc.method"] == "Say" and attributes["rpc.grpc.status_code"] == 0
    assert attributes["net.peer.ip"] == "127.0.0.1" and int(str(attributes["net.peer.port"])) > 0
    assert ok.status.status_code is StatusCode.UNSET
    # the caller's mistake leaves the status unset; the server's own failure is an error, with its exception
    (missing,) = traced("missing")
    assert missing.attributes is not None and missing.attributes["rpc.grpc.status_code"] == 5
    assert missing.status.status_code is StatusCode.UNSET and not missing.events
    (broken,) = traced("broken")
    assert broken.attributes is not None and broken.attributes["rpc.grpc.status_code"] == 13
    assert broken.status.status_code is StatusCode.ERROR
    assert [e.name for e in broken.events] == ["exception"]
    assert traced("health") == []


async def test_unsampled_grpc_calls_record_nothing_but_carry_their_trace(spans: InMemorySpanExporter) -> None:
    seen: list[trace.SpanContext] = []

    async def say(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        seen.append(trace.get_current_span().get_span_context())
        return request

    server, port = await _serve(say)
    trace_id = uuid.uuid4().hex
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            metadata = (("traceparent", f"00-{trace_id}-{'ab' * 8}-00"),)
            assert await channel.unary_unary("/test.Echo/Say")(b"quiet", metadata=metadata) == b"quiet"
    finally:
        await server.stop(None)
    # the handler runs in the caller's trace (log lines and the next hop carry it), and no span is exported
    assert [(c.trace_id, c.trace_flags.sampled) for c in seen] == [(int(trace_id, 16), False)]
    assert not _in_trace(spans, trace_id)


class EchoStub:
    """What a generated stub is to PeerClient: one multi-callable per RPC, made from the channel."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.Say = channel.unary_unary("/test.Echo/Say")


async def test_peer_calls_are_client_spans_whose_context_reaches_the_server(spans: InMemorySpanExporter) -> None:
    seen: list[trace.SpanContext] = []

    async def say(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        seen.append(trace.get_current_span().get_span_context())
        if request == b"missing":
            raise NotFound("no such thing")
        return request

    server, port = await _serve(say)
    breaker = make_breaker(f"echo-{uuid.uuid4().hex[:6]}", fail_max=5, reset_timeout_s=30)
    client = PeerClient(target_name="echo", address=f"127.0.0.1:{port}", stub=EchoStub, timeout_s=5, breaker=breaker)
    tracer = trace.get_tracer("test")
    try:
        with tracer.start_as_current_span("request") as request_span:
            assert await client.unary(client.stub.Say, b"hello") == b"hello"
            with pytest.raises(RemoteError):
                await client.unary(client.stub.Say, b"missing")
        unsampled = uuid.uuid4().hex
        parent = propagate.extract({"traceparent": f"00-{unsampled}-{'ab' * 8}-00"})
        with trace.use_span(trace.get_current_span(parent)):
            assert await client.unary(client.stub.Say, b"quiet") == b"quiet"
        with telemetry.untraced():
            assert await client.unary(client.stub.Say, b"probe") == b"probe"
        breaker.open()
        with tracer.start_as_current_span("refused") as refused_span, pytest.raises(PeerUnavailable):
            await client.unary(client.stub.Say, b"never sent")
    finally:
        await client.close()
        await server.stop(None)

    finished = spans.get_finished_spans()
    mine = [s for s in finished if s.context.trace_id == request_span.get_span_context().trace_id]
    calls = [s for s in mine if s.kind is SpanKind.CLIENT]
    assert [s.name for s in calls] == ["/test.Echo/Say", "/test.Echo/Say"]
    ok, missing = calls
    assert all(c.parent is not None and c.parent.span_id == request_span.get_span_context().span_id for c in calls)
    assert dict(ok.attributes or {}) == {
        "rpc.system": "grpc",
        "rpc.service": "test.Echo",
        "rpc.method": "Say",
        "rpc.grpc.status_code": 0,
    }
    assert ok.status.status_code is StatusCode.UNSET
    assert missing.attributes is not None and missing.attributes["rpc.grpc.status_code"] == 5
    assert missing.status.status_code is StatusCode.ERROR and missing.status.description == "NOT_FOUND: no such thing"
    # the server's span is the child of the call's, through the traceparent the call carried
    served = [s for s in mine if s.kind is SpanKind.SERVER]
    assert sorted(s.parent.span_id for s in served if s.parent) == sorted(c.context.span_id for c in calls)
    # unsampled: the server ran in the caller's trace, nothing was recorded on either side
    assert (seen[2].trace_id, seen[2].trace_flags.sampled) == (int(unsampled, 16), False)
    assert not [s for s in finished if s.context.trace_id == int(unsampled, 16)]
    # untraced (a probe): no client span, so the server started a trace of its own
    assert seen[3].trace_id not in {s.context.trace_id for s in finished if s.kind is SpanKind.CLIENT}
    # refused by the open breaker: no call made, no span
    assert [s.name for s in finished if s.context.trace_id == refused_span.get_span_context().trace_id] == ["refused"]


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
