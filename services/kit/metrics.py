"""The Prometheus metric families shared by every service (SPEC section 10), and how the edges observe them.

Names start with `venta_` and carry their unit; labels are bounded sets (service, method, route template, code),
never ids or raw paths: an unknown route is `<unmatched>`, an unknown HTTP method `_OTHER`. Families are
module-level because prometheus-client's registry is process-wide. Latency observations carry the active trace as
an exemplar (`trace_exemplar()`), which prometheus-client exposes in the OpenMetrics format only (`/metrics` answers
it when the scraper asks for it), so a slow bucket on a dashboard links to a trace. `set_enabled(False)`
(`VENTA_METRICS_ENABLED=false`) stops the per-request observations at the HTTP and gRPC edges: a switch for
measuring what metrics cost, not for production.
"""

from __future__ import annotations

from opentelemetry import trace
from prometheus_client import Counter, Gauge, Histogram

_enabled = True

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"})
OTHER_METHOD = "_OTHER"


def set_enabled(on: bool) -> None:
    global _enabled
    _enabled = on


def enabled() -> bool:
    """Whether the HTTP and gRPC edges record their per-request metrics."""
    return _enabled


def method_label(method: str) -> str:
    """The HTTP method as a label: one of the standard nine, anything else `_OTHER` (clients choose methods)."""
    return method if method in HTTP_METHODS else OTHER_METHOD


def trace_exemplar() -> dict[str, str] | None:
    """`{trace_id, span_id}` of the active span when it is sampled (an unsampled trace exists nowhere), else None."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    return {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}


LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

GRPC_SERVER_REQUESTS = Counter("venta_grpc_server_requests_total", "gRPC calls handled", ["service", "method", "code"])
GRPC_SERVER_ERRORS = Counter(
    "venta_grpc_server_errors_total", "gRPC calls that ended with a status other than OK", ["service", "method", "code"]
)
GRPC_SERVER_LATENCY = Histogram(
    "venta_grpc_server_request_duration_seconds", "gRPC handling time", ["service", "method"], buckets=LATENCY_BUCKETS
)
GRPC_SERVER_IN_FLIGHT = Gauge("venta_grpc_server_in_flight_requests", "gRPC calls being handled", ["service"])

GRPC_CLIENT_REQUESTS = Counter(
    "venta_grpc_client_requests_total", "gRPC calls made to a peer", ["target", "method", "code"]
)
GRPC_CLIENT_LATENCY = Histogram(
    "venta_grpc_client_request_duration_seconds",
    "gRPC call time seen by the caller",
    ["target", "method"],
    buckets=LATENCY_BUCKETS,
)

BREAKER_STATE = Gauge("venta_breaker_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open", ["breaker"])
BREAKER_TRANSITIONS = Counter("venta_breaker_transitions_total", "Circuit breaker state changes", ["breaker", "state"])
BREAKER_REJECTIONS = Counter(
    "venta_breaker_rejections_total", "Calls refused without trying because the breaker was open", ["breaker"]
)

HTTP_REQUESTS = Counter(
    "venta_http_server_requests_total", "HTTP requests handled", ["service", "route", "method", "status"]
)
HTTP_ERRORS = Counter(
    "venta_http_server_errors_total", "HTTP requests answered with 4xx/5xx", ["service", "route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "venta_http_server_request_duration_seconds",
    "HTTP handling time",
    ["service", "route", "method"],
    buckets=LATENCY_BUCKETS,
)

DEPENDENCY_UP = Gauge(
    "venta_dependency_up", "1 when a dependency answered its last readiness check", ["service", "dependency"]
)

RATE_LIMIT_REJECTIONS = Counter(
    "venta_rate_limit_rejections_total", "Requests refused with 429 by a rate limit", ["service", "route"]
)
CACHE_REQUESTS = Counter(
    "venta_cache_requests_total", "Read-through cache lookups by outcome (hit, miss, error)", ["cache", "result"]
)
