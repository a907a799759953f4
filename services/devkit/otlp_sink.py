"""An in-memory OTLP/gRPC trace receiver: what a collector would receive from the services, kept for assertions.

Tests run the services as real processes with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing here, so they check the spans
as production exports them (real exporter, real wire format, one process per service) rather than spans read out
of a shared in-process provider. The benchmark runs it as a process of its own that only counts
(`python -m services.devkit.otlp_sink --port N`), so that exporting costs what it costs in production. Never part
of a running platform.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def _attributes(values: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in values}


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    trace_id: str
    span_id: str
    parent_span_id: str
    """Empty for a root span."""
    name: str
    kind: str
    """SERVER, CLIENT, PRODUCER, CONSUMER or INTERNAL."""
    attributes: dict[str, Any] = field(hash=False)
    links: tuple[tuple[str, str], ...]
    """(trace id, span id) of each link."""
    error: bool

    @classmethod
    def from_proto(cls, service: str, span: Span) -> ReceivedSpan:
        return cls(
            service=service,
            trace_id=span.trace_id.hex(),
            span_id=span.span_id.hex(),
            parent_span_id=span.parent_span_id.hex(),
            name=span.name,
            kind=Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
            attributes=_attributes(span.attributes),
            links=tuple((link.trace_id.hex(), link.span_id.hex()) for link in span.links),
            error=span.status.code == span.status.STATUS_CODE_ERROR,
        )


class OtlpReceiver(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    """`opentelemetry.proto.collector.trace.v1.TraceService` on a random port; spans kept in arrival order."""

    def __init__(self, *, keep: bool = True) -> None:
        self.keep = keep
        self.spans: list[ReceivedSpan] = []
        self.received = 0
        self.batches: list[int] = []
        """Spans in each export request, in arrival order."""
        self.port = 0
        self._server: grpc.aio.Server | None = None

    @property
    def endpoint(self) -> str:
        """What `OTEL_EXPORTER_OTLP_ENDPOINT` should say (http: the exporter connects without TLS)."""
        return f"http://127.0.0.1:{self.port}"

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.batches.append(sum(len(scope.spans) for spans in request.resource_spans for scope in spans.scope_spans))
        for resource_spans in request.resource_spans:
            service = str(_attributes(resource_spans.resource.attributes).get("service.name", ""))
            for scope_spans in resource_spans.scope_spans:
                self.received += len(scope_spans.spans)
                if self.keep:
                    self.spans.extend(ReceivedSpan.from_proto(service, span) for span in scope_spans.spans)
        return trace_service_pb2.ExportTraceServiceResponse()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)])
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)  # type: ignore[no-untyped-call]
        self.port = self._server.add_insecure_port(f"{host}:{port}")
        await self._server.start()

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(1.0)
            self._server = None

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        return [span for span in self.spans if span.trace_id == trace_id]

    async def wait_for(
        self, condition: Callable[[OtlpReceiver], bool], *, timeout_s: float = 20.0, what: str = "spans"
    ) -> None:
        """Wait until `condition(self)` holds (spans arrive in batches, every `OTEL_BSP_SCHEDULE_DELAY` ms)."""
        deadline = time.monotonic() + timeout_s
        while not condition(self):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {what} after {timeout_s:.0f}s ({len(self.spans)} spans received)")
            await asyncio.sleep(0.05)


async def serve_sink(port: int) -> None:
    """Receive and count spans until SIGTERM/SIGINT, then print the count (the benchmark's collector)."""
    from services.kit.lifecycle import stop_requested

    receiver = OtlpReceiver(keep=False)
    await receiver.start(port=port)
    stop = stop_requested()
    await stop.wait()
    await receiver.stop()
    print(f"received {receiver.received} spans", flush=True)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="An OTLP/gRPC trace sink that counts what it receives.")
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve_sink(parser.parse_args().port))
