"""OpenTelemetry for every process of the platform, configured in one place so no service wires it by itself.

Entry point: `instrument_process(service)`, called once per process before anything is built (`venta serve` does
it for every service, the Socket.IO gateway included). It installs the tracer provider and the maintained library
instrumentations that patch libraries process-wide: asyncpg (every PostgreSQL statement, whether SQLAlchemy or a
search provider sent it), redis, httpx and aiohttp clients. Instrumentation that needs an object is applied by the
kit code that builds that object, through the helpers below: gRPC spans are the kit's own, made with `grpc_tracer()`
by the server interceptor (`services.kit.grpc.interceptors`: SERVER) and by `PeerClient` around each call
(`services.kit.grpc.client`: CLIENT), as OpenTelemetry's grpc instrumentation names them; HTTP server spans are the
kit's request middleware's (`services.kit.http.middleware`, with `http_tracer()`), and every FastAPI app is built with
`telemetry=fastapi_telemetry()`, which turns FastAPI's own off. NATS has no maintained instrumentation:
`services.kit.events.tracing` carries the W3C context in message headers itself.

Everything is driven by the standard variables, which the SDK reads itself: `OTEL_SDK_DISABLED=true` turns tracing
off entirely (no provider, no library patched, no interceptor: the cheapest "off"), `OTEL_TRACES_SAMPLER` and
`OTEL_TRACES_SAMPLER_ARG` choose the sampler (the operator sets `parentbased_traceidratio`), `OTEL_SERVICE_NAME`
names the service, and spans are exported over OTLP/gRPC only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the
traces-specific variable) is set. Without an endpoint spans are still created, so trace ids reach the logs and
propagate to the next hop. Database statements are traced only inside a recorded span (`traced_if_recorded`, which
the kit's `Database` applies): an unsampled call's statements build no span. Probes and background polling are never
traced: `untraced()` suppresses the library instrumentations around readiness checks and the outbox relay's
bookkeeping (otherwise each would be a new trace every few seconds), and the gRPC server interceptor skips
`grpc.health.v1` and reflection (peers' health is checked on the channel, not through `PeerClient`).

This module must never import a service, and must stay cheap to import (instrumentations are imported lazily).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from services.kit import metrics

if TYPE_CHECKING:
    from fastapi.telemetry import TelemetryConfig

# paths that get no server span: probes and scrapes
UNTRACED_PATHS = frozenset({"/health", "/health/ready", "/health/events", "/metrics"})

EXPORT_BATCH_SPANS = 64
"""Spans per OTLP export unless `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` says otherwise. The exporter's thread encodes a batch
in Python, holding the GIL the service's event loop needs: the SDK's 512 spans at once stalled the vendor service's
calls for long enough to add ~16 ms to its p99 under load; 64 at a time, ~5 ms, for the same throughput
(bench/README.md, "Tracing and metrics")."""

_provider: TracerProvider | None = None
_instrumented = False


def tracing_enabled() -> bool:
    """False when `OTEL_SDK_DISABLED=true`: then nothing is traced and no library is patched."""
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() != "true"


def new_provider(service: str) -> TracerProvider:
    """A tracer provider for `service` (`OTEL_SERVICE_NAME` wins); the sampler comes from `OTEL_TRACES_SAMPLER*`."""
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service)}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        # the SDK reads OTEL_BSP_MAX_EXPORT_BATCH_SIZE itself when set; otherwise ours, not its 512
        batch = None if os.environ.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") else EXPORT_BATCH_SPANS
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(), max_export_batch_size=batch))
    return provider


def configure_tracing(service: str, *, extra_processor: SpanProcessor | None = None) -> TracerProvider:
    """Install the process-wide tracer provider once; later calls only add `extra_processor` (tests use it)."""
    global _provider
    if _provider is None:
        _provider = new_provider(service)
        trace.set_tracer_provider(_provider)
    if extra_processor is not None:
        _provider.add_span_processor(extra_processor)
    return _provider


def instrument_process(
    service: str, *, metrics_enabled: bool = True, extra_processor: SpanProcessor | None = None
) -> None:
    """Everything a process needs, once: tracer provider, library instrumentations, the metrics switch.

    Idempotent (several hosts may share one process in tests). `metrics_enabled=False` (`VENTA_METRICS_ENABLED`)
    stops the per-request `venta_*` observations at the HTTP and gRPC edges; the benchmark uses it for "off".
    """
    global _instrumented
    metrics.set_enabled(metrics_enabled)
    if not tracing_enabled():
        return
    configure_tracing(service, extra_processor=extra_processor)
    if _instrumented:
        return
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.metrics import NoOpMeterProvider

    no_meters = NoOpMeterProvider()  # metrics are prometheus-client's (`services.kit.metrics`), not OTel's
    AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]
    RedisInstrumentor().instrument()
    HTTPXClientInstrumentor().instrument(meter_provider=no_meters)
    AioHttpClientInstrumentor().instrument(meter_provider=no_meters)
    _instrumented = True


def fastapi_telemetry() -> TelemetryConfig:
    """What every FastAPI app of the platform passes as `FastAPI(telemetry=...)`: FastAPI's own OpenTelemetry support
    turned off, since it would otherwise trace every request as soon as a tracer provider is installed.

    The server span is the kit's (`services.kit.http.middleware.RequestContextMiddleware`, with `http_tracer()`):
    the same span, cheaper for the requests that are not recorded. Metrics and logs stay prometheus-client's and the
    standard library's (`services.kit.metrics`, `services.kit.logging`); no span per dependency, endpoint and
    serialization: every dependency that does I/O already shows as its client's span.
    """
    return {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


def http_tracer() -> trace.Tracer | None:
    """The tracer of the HTTP server spans (the kit's request middleware), or None when tracing is off."""
    return trace.get_tracer("services.kit.http") if tracing_enabled() else None


def grpc_tracer() -> trace.Tracer | None:
    """The tracer of the gRPC spans the kit makes (server interceptor, `PeerClient`), or None when tracing is off."""
    return trace.get_tracer("services.kit.grpc") if tracing_enabled() else None


@contextlib.contextmanager
def untraced() -> Iterator[None]:
    """Library instrumentations create no span inside this block (probes, polling); our own spans still can."""
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    with suppress_instrumentation():
        yield


@contextlib.contextmanager
def traced_if_recorded() -> Iterator[None]:
    """Library spans inside the block (asyncpg's, for a database call) only when the current span is recorded.

    With a ratio sampler most calls are not sampled, yet asyncpg's instrumentation still builds a span for each of
    their statements (its name, the statement's attributes, a context to attach), one nobody records: for a one-row
    read that costs as much CPU as asyncpg's own work. A statement's span propagates nothing, so leaving it out of an
    unsampled call loses nothing; in a sampled call every statement still has its span. Work outside any span (a
    background task) is not traced either: each statement would otherwise start a trace of its own.
    """
    if trace.get_current_span().is_recording():
        yield
        return
    with untraced():
        yield


def shutdown_tracing() -> None:
    """Export what is buffered, then stop the exporter (called when the process ends)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis=2000)
        _provider.shutdown()
