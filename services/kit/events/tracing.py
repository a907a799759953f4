"""Trace context in message headers, so one trace runs from the request through the outbox, NATS and the consumer.

Neither NATS nor Redis Streams has maintained OpenTelemetry instrumentation for this, so the bus carries the W3C
context itself (spans name the provider as `messaging.system`). The context is
captured when the outbox row is written (inside the request's span) and stored with the row; the relay publishes
each row inside a PRODUCER span that is a child of that stored context, and puts the PRODUCER span's context in the
message headers; the consumer handles each message inside a CONSUMER span that is a child of those headers. So the
trace is one tree: request -> ... -> publish -> process. A batch handled in one call gets, in addition, a batch span
(current during the call, so the handler's own spans hang under it) linked to every message, and each message's
CONSUMER span links back to it. Never put anything but trace context in these headers here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence

from opentelemetry import context, propagate, trace
from opentelemetry.trace import Link, Span, SpanKind, StatusCode

from services.kit.events.bus import Event

tracer = trace.get_tracer("venta.events")

MESSAGING_SYSTEM = "nats"  # the default provider's; a Redis Streams bus passes "redis"
MAX_LINKS = 128


def current_headers() -> dict[str, str]:
    """The W3C trace context of the current span as message headers (empty when there is no span)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from(headers: Mapping[str, str] | None) -> context.Context:
    """The context carried by `headers`; an empty one (a new trace) when they carry none."""
    return propagate.extract(dict(headers or {}))


def parent_context(headers: Mapping[str, str] | None) -> context.Context | None:
    """The context in `headers` when they carry one, else None (the current context)."""
    return context_from(headers) if headers and "traceparent" in headers else None


def link_from(headers: Mapping[str, str] | None) -> Link | None:
    """A span link to the trace in `headers`, for spans that handle many messages at once."""
    span_context = trace.get_current_span(context_from(headers)).get_span_context()
    return Link(span_context) if span_context.is_valid else None


def _attributes(operation: str, subject: str, message_id: str | None, system: str) -> dict[str, str]:
    attributes = {
        "messaging.system": system,
        "messaging.operation.type": operation,
        "messaging.destination.name": subject,
    }
    if message_id:
        attributes["messaging.message.id"] = message_id
    return attributes


def start_publish(
    subject: str, message_id: str, *, parent: context.Context | None, system: str = MESSAGING_SYSTEM
) -> tuple[Span, dict[str, str]]:
    """A PRODUCER span for one message, child of `parent` (None: the current span), and the headers that carry it.

    The caller ends the span (`end_span`) once the stream acknowledged the message, or failed to.
    """
    attributes = _attributes("send", subject, message_id, system)
    span = tracer.start_span(f"publish {subject}", context=parent, kind=SpanKind.PRODUCER, attributes=attributes)
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span, parent))
    return span, carrier


def end_span(span: Span, error: BaseException | None = None) -> None:
    if error is not None:
        span.record_exception(error)
        span.set_status(StatusCode.ERROR, f"{type(error).__name__}: {error}")
    span.end()


def _process_span(event: Event, consumer: str, system: str, links: Sequence[Link] = ()) -> Span:
    attributes = _attributes("process", event.subject, event.envelope.message_id, system)
    attributes["messaging.consumer.group.name"] = consumer
    return tracer.start_span(
        f"process {event.subject}",
        context=context_from(event.headers),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        links=links,
    )


@contextlib.contextmanager
def processing(
    events: Sequence[Event], *, consumer: str, subject: str, system: str = MESSAGING_SYSTEM
) -> Iterator[None]:
    """The spans of handling `events` in one call; the handler runs inside it.

    One event: its CONSUMER span (child of the publish span in its headers) is current. Several: a batch span is
    current (linked to each message) and each message gets its CONSUMER span in its own trace, linked to the batch
    span and ended with it, so every message's trace still reaches its consumer.
    """
    if len(events) == 1:
        with trace.use_span(_process_span(events[0], consumer, system), end_on_exit=True):
            yield
        return
    links = [link for event in events if (link := link_from(event.headers)) is not None]
    with tracer.start_as_current_span(
        f"process {subject}",
        kind=SpanKind.CONSUMER,
        links=links[:MAX_LINKS],
        attributes={
            "messaging.system": system,
            "messaging.operation.type": "process",
            "messaging.batch.message_count": len(events),
            "messaging.consumer.group.name": consumer,
        },
    ) as batch:
        own = [Link(batch.get_span_context())]
        spans = [_process_span(event, consumer, system, own) for event in events]
        error: BaseException | None = None
        try:
            yield
        except BaseException as exc:
            error = exc
            raise
        finally:
            for span in spans:
                end_span(span, error)
