"""The operator's Prometheus metrics (SPEC section 10: reconciles total, failed, duration; managed platforms).

Module-level families because prometheus-client's registry is process-wide; the HTTP exporter is started by the
handlers' startup hook (`serve`), not at import, so importing the package in a test opens no port.

The label values known in advance (triggers, failure reasons) are created at 0 at import: a series that appears
only with its first failure makes `rate()` and `increase()` miss that failure, and leaves dashboards empty until it.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECONCILES = Counter("venta_operator_reconciles_total", "Reconcile passes, by trigger", ["trigger"])
RECONCILE_FAILURES = Counter(
    "venta_operator_reconcile_failures_total", "Reconcile passes that ended in an error, by reason", ["reason"]
)
RECONCILE_DURATION = Histogram(
    "venta_operator_reconcile_duration_seconds",
    "Time of one reconcile pass",
    ["trigger"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
MANAGED_PLATFORMS = Gauge("venta_operator_managed_platforms", "VentaPlatform objects the operator watches")
CHILD_WRITES = Counter(
    "venta_operator_child_writes_total", "Children created, applied or deleted, by kind and action", ["kind", "action"]
)
API_REQUESTS = Counter("venta_operator_api_requests_total", "Requests to the API server", ["verb", "kind"])

# What starts a pass (handlers.run): the loop's start (the platform created, or the operator started), an edit of the
# platform, a child's readiness change, the back-off of a converging platform, the drift period of a ready one.
TRIGGERS = ("start", "update", "child", "retry", "timer")
FAILURE_REASONS = ("InvalidSpec", "ApiError", "apply_failed")  # handlers._pass: spec refused, API error, apply error

for _trigger in TRIGGERS:
    RECONCILES.labels(trigger=_trigger)
    RECONCILE_DURATION.labels(trigger=_trigger)
for _reason in FAILURE_REASONS:
    RECONCILE_FAILURES.labels(reason=_reason)


def serve(port: int) -> None:
    """Expose /metrics on `port` (a daemon thread of prometheus-client), as the operator does at start."""
    start_http_server(port)
