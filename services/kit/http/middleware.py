"""ASGI middleware every HTTP service of the platform stacks the same way (pure ASGI: no BaseHTTPMiddleware).

`RequestContextMiddleware` is the outermost layer of the app: the request's server span, request id in and out
(`X-Request-ID`, also in the log context, on the span and passed on to gRPC peers), the `venta_http_*` metrics
labelled by route template (never the raw path: ids would make the label set unbounded) with the trace as exemplar,
one log line, and the last-resort answer for an error nobody handled (logged with its traceback here, generic
INTERNAL to the client).
The server span is the one OpenTelemetry's ASGI instrumentation and FastAPI's own telemetry make (kind SERVER,
parented by the caller's `traceparent`, named `GET /v1/vendors/{id}` once routing chose the route, the stable HTTP
semantic conventions' attributes, status ERROR for a 5xx or an exception), probes and scrapes left out
(`telemetry.UNTRACED_PATHS`). It is made here rather than by FastAPI (`FastAPI(telemetry=...)`, turned off by
`telemetry.fastapi_telemetry()`), as the gRPC server spans are the kit's own (`services.kit.grpc.interceptors`):
FastAPI's wraps the app in one more layer, wraps `receive` and `send` again, and builds every attribute before the
sampler has decided, recorded or not: turning it off saved the gateway ~55 us of CPU per cached read, about a fifth
(1% of the traces sampled; bench/README.md, "Server spans, again"). Here an unrecorded request costs the sampler and a
context attach (~3% of the cached read's samples), and attributes are built only for recorded spans.
`SecurityHeadersMiddleware` and `BodySizeLimitMiddleware` are small guards a public API needs.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from contextvars import Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, StatusCode
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.kit.logging import new_request_id, request_id_var
from services.kit.metrics import (
    HTTP_ERRORS,
    HTTP_LATENCY,
    HTTP_REQUESTS,
    OTHER_METHOD,
    enabled,
    method_label,
    trace_exemplar,
)
from services.kit.telemetry import UNTRACED_PATHS, http_tracer

log = logging.getLogger("venta.http")

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UNMATCHED_ROUTE = "<unmatched>"

ErrorRenderer = Callable[[Scope, Exception], Response]


def route_template(scope: Scope) -> str:
    """The matched route's template (`/v1/vendors/{id}`), or `<unmatched>`; read after routing ran."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of the request header `name` (lower-case bytes), read straight from the ASGI scope."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _server_span_attributes(scope: Scope, method: str) -> dict[str, str | int]:
    """A recorded server span's request attributes (OpenTelemetry's stable HTTP semantic conventions)."""
    attributes: dict[str, str | int] = {
        "http.request.method": method,
        "url.scheme": str(scope.get("scheme", "http")),
        "url.path": str(scope.get("path", "")),
    }
    if method != scope["method"]:
        attributes["http.request.method_original"] = str(scope["method"])
    if scope.get("http_version"):
        attributes["network.protocol.version"] = str(scope["http_version"])
    host = header(scope, b"host")
    if host:
        if host.startswith("["):  # an IPv6 literal: [::1]:8080
            name, _, rest = host[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ""
        else:
            name, _, port = host.partition(":")
        attributes["server.address"] = name
        if port.isdigit():
            attributes["server.port"] = int(port)
    client = scope.get("client")
    if client:
        attributes["client.address"] = str(client[0])
    agent = header(scope, b"user-agent")
    if agent:
        attributes["user_agent.original"] = agent
    return attributes


def _span_method(method: str) -> str:
    return "HTTP" if method == OTHER_METHOD else method


def _end_span(span: trace.Span, method: str, route: str, status: int, error: Exception | None) -> None:
    """Named by the route template once routing chose one (`GET /v1/vendors/{id}`; the raw path would make span
    names unbounded), with the answer's status; ERROR for a 5xx or an exception nobody handled."""
    if span.is_recording():
        if route != UNMATCHED_ROUTE:
            span.update_name(f"{_span_method(method)} {route}")
            span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", status)
        if error is not None:
            span.record_exception(error)
            span.set_attribute("error.type", type(error).__qualname__)
            span.set_status(StatusCode.ERROR, f"{type(error).__name__}: {error}")
        elif status >= 500:
            span.set_attribute("error.type", str(status))
            span.set_status(StatusCode.ERROR)
    span.end()


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, service: str, on_error: ErrorRenderer) -> None:
        self.app = app
        self.service = service
        self.on_error = on_error
        self.tracer = http_tracer()  # None when `OTEL_SDK_DISABLED=true`: no spans
        # the headers the process's propagator reads (W3C `traceparent`, `tracestate`, `baggage` by default)
        self._propagated = frozenset(field.encode() for field in propagate.get_global_textmap().fields)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = header(scope, b"x-request-id")
        request_id = incoming if incoming and _VALID_REQUEST_ID.match(incoming) else new_request_id()
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        state: dict[str, Any] = {"status": 500, "started": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        method = method_label(scope["method"])
        span, span_token = self._start_span(scope, method, request_id)
        error: Exception | None = None
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # the edge: nothing escapes without an answer and a log line
            error = exc
            log.exception("unhandled error on %s %s", method, scope.get("path"))
            if not state["started"]:
                await self.on_error(scope, exc)(scope, receive, send_with_id)
        finally:
            status, route = int(state["status"]), route_template(scope)
            self._observe(scope, method, route, status, time.perf_counter() - started)  # inside the span: exemplar
            request_id_var.reset(token)
            if span is not None and span_token is not None:
                _end_span(span, method, route, status, error)
                otel_context.detach(span_token)

    def _start_span(
        self, scope: Scope, method: str, request_id: str
    ) -> tuple[trace.Span | None, Token[otel_context.Context] | None]:
        """The request's server span, current until `_end_span`; none for probes and scrapes or without a tracer."""
        if self.tracer is None or str(scope.get("path", "")).rstrip("/") in UNTRACED_PATHS:
            return None, None
        carrier = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope.get("headers", ())
            if key in self._propagated
        }
        parent = propagate.extract(carrier) if carrier else None
        # an unknown method is `HTTP` in span names (the conventions' choice), `_OTHER` in attributes and metrics
        span = self.tracer.start_span(_span_method(method), context=parent, kind=SpanKind.SERVER)
        if span.is_recording():
            span.set_attributes({**_server_span_attributes(scope, method), "venta.request_id": request_id})
        return span, otel_context.attach(trace.set_span_in_context(span, parent))

    def _observe(self, scope: Scope, method: str, route: str, status: int, elapsed: float) -> None:
        if enabled():
            HTTP_REQUESTS.labels(self.service, route, method, str(status)).inc()
            HTTP_LATENCY.labels(self.service, route, method).observe(elapsed, trace_exemplar())
            if status >= 400:
                HTTP_ERRORS.labels(self.service, route, method, str(status)).inc()
        # 500 is our bug; 502/503 a dependency's trouble (its breaker and readiness already say so)
        level = (
            logging.ERROR
            if status == 500
            else logging.WARNING
            if status > 500
            else logging.INFO
            if status >= 400
            else logging.DEBUG
        )
        log.log(
            level,
            "%s %s %d in %.1f ms",
            method,
            scope.get("path"),
            status,
            elapsed * 1000,
            extra={"http_method": method, "http_route": route, "http_status": status, "duration_ms": elapsed * 1000},
        )


API_SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-site",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
    "strict-transport-security": "max-age=63072000; includeSubDomains",
}
API_CSP = "default-src 'none'; frame-ancestors 'none'"
_HEADERS = tuple((name.encode(), value.encode()) for name, value in API_SECURITY_HEADERS.items())
_STRICT_HEADERS = (*_HEADERS, (b"content-security-policy", API_CSP.encode()))


class SecurityHeadersMiddleware:
    """Headers that make a JSON API safe to expose; the interactive docs pages are spared the strict CSP."""

    def __init__(self, app: ASGIApp, *, csp_exempt: tuple[str, ...] = ("/docs", "/redoc")) -> None:
        self.app = app
        self.csp_exempt = csp_exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = _STRICT_HEADERS if not str(scope.get("path", "")).startswith(self.csp_exempt) else _HEADERS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}  # what the app set itself stays
                headers.extend(pair for pair in added if pair[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(Exception):
    """Raised before the app runs; the renderer turns it into a 413 envelope."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


class BodySizeLimitMiddleware:
    """Refuses bodies over a limit before anything parses them (the multipart parser would spool them to disk).

    A declared `Content-Length` over the limit is refused at once; a chunked body is read up to the limit and
    replayed to the app. `limits` gives larger allowances to path prefixes (uploads).
    """

    def __init__(self, app: ASGIApp, *, default: int, limits: Mapping[str, int], on_error: ErrorRenderer) -> None:
        self.app = app
        self.default = default
        self.limits = dict(limits)
        self.on_error = on_error

    def _limit(self, path: str) -> int:
        return next((size for prefix, size in self.limits.items() if path.startswith(prefix)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in {"GET", "HEAD", "OPTIONS", "DELETE"}:
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope.get("path", ""))
        declared = header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > limit:
                await self.on_error(scope, BodyTooLarge(limit))(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self.on_error(scope, BodyTooLarge(limit))(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)
