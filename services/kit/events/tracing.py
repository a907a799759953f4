"""Trace context in message headers, so one trace runs from the request through the outbox, NATS and the consumer.

The context is captured when the outbox row is written (inside the request's span) and stored with the row; the
relay publishes inside a span that continues that trace, and consumers start their span from the headers.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import context, propagate, trace
from opentelemetry.trace import Link

tracer = trace.get_tracer("venta.events")


def current_headers() -> dict[str, str]:
    """The W3C trace context of the current span as message headers (empty when there is no span)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from(headers: Mapping[str, str] | None) -> context.Context:
    return propagate.extract(dict(headers or {}))


def link_from(headers: Mapping[str, str] | None) -> Link | None:
    """A span link to the trace in `headers`, for spans that handle many messages at once."""
    span_context = trace.get_current_span(context_from(headers)).get_span_context()
    return Link(span_context) if span_context.is_valid else None
