"""The HTTP and gRPC edges, in this process on real servers: a traced request leaves its trace id on the latency
histogram (an exemplar, shown in the OpenMetrics format), on its server span and on its log line, and the metric
labels stay bounded (route templates, `<unmatched>`, `_OTHER`) whatever the client sends."""

from __future__ import annotations

import io
import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterator

import grpc
import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.contracts.venta.vendor.v1 import vendor_pb2 as pb
from services.contracts.venta.vendor.v1 import vendor_pb2_grpc
from services.devkit.pytest_plugin import ServiceFactory
from services.devkit.servers import Postgres
from services.kit.grpc.server import GrpcServiceHost
from services.kit.http.handlers import install_error_handlers, render_error
from services.kit.http.middleware import RequestContextMiddleware
from services.kit.http.server import AsgiServiceHost
from services.kit.logging import JsonFormatter
from services.kit.probes import health_router
from services.kit.telemetry import configure_tracing, fastapi_telemetry
from services.vendors import app as vendors_app
from services.vendors.config import VendorSettings

OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    configure_tracing("test", extra_processor=SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()  # keeps nothing more for the rest of the session


@pytest.fixture
def http_log() -> Iterator[io.StringIO]:
    """The `venta.http` log lines as the services write them (JSON, formatted while the request's span is active)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("edge-test"))
    logger = logging.getLogger("venta.http")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield out
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
async def edge() -> AsyncIterator[tuple[str, str]]:
    """A small FastAPI service built with the kit's HTTP pieces and served by the kit's host; (service, URL)."""
    service = f"edge-{uuid.uuid4().hex[:8]}"
    app = FastAPI(telemetry=fastapi_telemetry())
    install_error_handlers(app)
    app.include_router(health_router(service, lambda _: {}))

    @app.get("/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    app.add_middleware(RequestContextMiddleware, service=service, on_error=render_error)
    host = AsgiServiceHost(service=service, app=app, host="127.0.0.1", port=0, shutdown_grace_s=1.0)
    await host.start()
    yield service, host.url
    await host.stop()


def _traceparent(sampled: bool = True) -> tuple[str, str, str]:
    trace_id, parent_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    return trace_id, parent_id, f"00-{trace_id}-{parent_id}-{'01' if sampled else '00'}"


def _bucket_lines(metrics: str, family: str, **labels: str) -> list[str]:
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    return [
        line
        for line in metrics.splitlines()
        if line.startswith(f"{family}_bucket{{") and all(label in line for label in wanted)
    ]


async def test_http_request_leaves_its_trace_on_span_histogram_and_log(
    spans: InMemorySpanExporter, http_log: io.StringIO, edge: tuple[str, str]
) -> None:
    service, url = edge
    trace_id, parent_id, header = _traceparent()
    async with httpx.AsyncClient(base_url=url) as client:
        answer = await client.get("/things/4711", headers={"traceparent": header})
        assert answer.status_code == 200
        request_id = answer.headers["x-request-id"]
        await client.get("/health/ready")
        metrics = await client.get("/metrics", headers=OPENMETRICS)
    assert metrics.headers["content-type"].startswith("application/openmetrics-text")

    (server,) = [
        s for s in spans.get_finished_spans() if s.context.trace_id == int(trace_id, 16) and s.kind is SpanKind.SERVER
    ]
    assert server.name == "GET /things/{thing_id}"
    assert server.parent is not None and server.parent.span_id == int(parent_id, 16)
    assert server.attributes is not None and server.attributes["venta.request_id"] == request_id
    assert not [s for s in spans.get_finished_spans() if "/health" in s.name], "probes are not traced"

    buckets = _bucket_lines(
        metrics.text,
        "venta_http_server_request_duration_seconds",
        service=service,
        route="/things/{thing_id}",
        method="GET",
    )
    exemplars = [line for line in buckets if " # {" in line]
    assert exemplars, buckets
    assert re.search(rf'trace_id="{trace_id}"', exemplars[0]), exemplars
    assert f'span_id="{format(server.context.span_id, "016x")}"' in exemplars[0]

    lines = [line for line in http_log.getvalue().splitlines() if request_id in line]
    assert lines and all(f'"trace_id": "{trace_id}"' in line for line in lines), lines


async def test_unsampled_request_leaves_no_exemplar(spans: InMemorySpanExporter, edge: tuple[str, str]) -> None:
    _, url = edge
    trace_id, _, header = _traceparent(sampled=False)
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/things/1", headers={"traceparent": header})).status_code == 200
        metrics = (await client.get("/metrics", headers=OPENMETRICS)).text
    assert trace_id not in metrics
    assert not [s for s in spans.get_finished_spans() if s.context.trace_id == int(trace_id, 16)]


async def test_labels_stay_bounded_whatever_the_client_sends(edge: tuple[str, str]) -> None:
    service, url = edge
    async with httpx.AsyncClient(base_url=url) as client:
        for n in range(3):
            assert (await client.get(f"/no/such/route/{uuid.uuid4()}")).status_code == 404
            # methods HTTP knows but the API does not serve reach the app: 405, and one label for all of them
            for method in ("PROPFIND", "PURGE", "MKCOL"):
                assert (await client.request(method, f"/things/{n}")).status_code == 405
            # a made-up method is refused by uvicorn's HTTP parser (httptools) before the app: no label at all
            assert (await client.request(f"BREW{n}", f"/things/{n}")).status_code == 400
        metrics = (await client.get("/metrics")).text
    mine = [
        line
        for line in metrics.splitlines()
        if line.startswith("venta_http_server_requests_total{") and f'service="{service}"' in line
    ]
    routes = set(re.findall(r'route="([^"]*)"', "\n".join(mine)))
    methods = set(re.findall(r'method="([^"]*)"', "\n".join(mine)))
    assert routes <= {"<unmatched>", "/things/{thing_id}"}, routes
    assert "<unmatched>" in routes
    assert methods == {"GET", "_OTHER"}, methods


async def _vendor_service(start_service: ServiceFactory, postgres: Postgres, service: str) -> GrpcServiceHost:
    """The vendor service in this process under its own name (its metrics apart), outbox relay off."""
    return await start_service(
        vendors_app.build,
        VendorSettings,
        migrations=vendors_app.MIGRATIONS,
        postgres=postgres,
        service_name=service,
        outbox_relay_enabled=False,
    )


async def test_grpc_call_leaves_its_trace_on_the_server_histogram(
    spans: InMemorySpanExporter, start_service: ServiceFactory, postgres: Postgres
) -> None:
    service = f"vendors-{uuid.uuid4().hex[:8]}"
    host = await _vendor_service(start_service, postgres, service)
    trace_id, parent_id, header = _traceparent()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.grpc_port}") as channel:
        stub = vendor_pb2_grpc.VendorServiceStub(channel)
        created = await stub.CreateVendor(pb.VendorCreateData(name="Exemplary Elotes", user_id=str(uuid.uuid4())))
        await stub.GetVendorById(pb.VendorLookupByIdData(id=created.id), metadata=(("traceparent", header),))
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"http://127.0.0.1:{host.http_port}/metrics", headers=OPENMETRICS)).text

    (server,) = [
        s for s in spans.get_finished_spans() if s.context.trace_id == int(trace_id, 16) and s.kind is SpanKind.SERVER
    ]
    assert server.name == "/venta.vendor.v1.VendorService/GetVendorById"
    assert server.parent is not None and server.parent.span_id == int(parent_id, 16)
    buckets = _bucket_lines(
        metrics, "venta_grpc_server_request_duration_seconds", service=service, method="GetVendorById"
    )
    assert [line for line in buckets if f'trace_id="{trace_id}"' in line], buckets


@pytest.fixture
def statements_given_a_span() -> Iterator[list[str]]:
    """asyncpg instrumented in this process, as `instrument_process` does it in a served one; the statements its
    instrumentation built a span for, in order."""
    from opentelemetry.instrumentation import asyncpg as otel_asyncpg

    built: list[str] = []
    hydrate = otel_asyncpg._hydrate_span_from_args

    def counting(connection: object, query: str, *args: object, **kwargs: object) -> object:
        built.append(query)
        return hydrate(connection, query, *args, **kwargs)

    instrumentor = otel_asyncpg.AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
    mine = not instrumentor.is_instrumented_by_opentelemetry
    if mine:
        instrumentor.instrument()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(otel_asyncpg, "_hydrate_span_from_args", counting)
        yield built
    if mine:
        instrumentor.uninstrument()


async def test_statements_are_traced_inside_recorded_calls_only(
    spans: InMemorySpanExporter, statements_given_a_span: list[str], start_service: ServiceFactory, postgres: Postgres
) -> None:
    """A sampled call has a span for its statement, a child of the call's; an unsampled one builds none (a span
    nobody records costs as much as the read itself), on both the asyncpg and the SQLAlchemy paths."""
    host = await _vendor_service(start_service, postgres, f"vendors-{uuid.uuid4().hex[:8]}")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.grpc_port}") as channel:
        stub = vendor_pb2_grpc.VendorServiceStub(channel)
        owner = str(uuid.uuid4())
        created = await stub.CreateVendor(pb.VendorCreateData(name="Sampled Sopes", user_id=owner))
        read = pb.VendorLookupByIdData(id=created.id)

        sampled, _, header = _traceparent(sampled=True)
        statements_given_a_span.clear()
        await stub.GetVendorById(read, metadata=(("traceparent", header),))
        assert [q for q in statements_given_a_span if "FROM vendor WHERE id" in q], statements_given_a_span
        traced = [s for s in spans.get_finished_spans() if s.context.trace_id == int(sampled, 16)]
        (server,) = [s for s in traced if s.kind is SpanKind.SERVER]
        statement = [s for s in traced if s.kind is SpanKind.CLIENT]
        assert statement and all(s.parent is not None and s.parent.span_id == server.context.span_id for s in statement)

        unsampled, _, header = _traceparent(sampled=False)
        statements_given_a_span.clear()
        await stub.GetVendorById(read, metadata=(("traceparent", header),))  # asyncpg's pool
        await stub.UpdateVendor(  # asyncpg's pool, in a transaction
            pb.VendorUpdateData(id=created.id, user_id=owner, name="Unsampled Sopes"),
            metadata=(("traceparent", header),),
        )
        await stub.CreateVendor(  # SQLAlchemy's session
            pb.VendorCreateData(name="Unsampled Sides", user_id=owner), metadata=(("traceparent", header),)
        )
        assert statements_given_a_span == []
        assert not [s for s in spans.get_finished_spans() if s.context.trace_id == int(unsampled, 16)]
