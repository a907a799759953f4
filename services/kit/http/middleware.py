"""ASGI middleware every HTTP service of the platform stacks the same way (pure ASGI: no BaseHTTPMiddleware).

`RequestContextMiddleware` is the outermost layer of the app: request id in and out (`X-Request-ID`, also in the log
context, on the server span and passed on to gRPC peers), the `venta_http_*` metrics labelled by route template
(never the raw path: ids would make the label set unbounded) with the trace as exemplar, one log line, and the
last-resort answer for an error nobody handled (logged with its traceback here, generic INTERNAL to the client).
The server span itself is FastAPI's own telemetry (`services.kit.telemetry.fastapi_telemetry`), which wraps every
middleware of the app, so the metrics and the log line see the request's trace.
`SecurityHeadersMiddleware` and `BodySizeLimitMiddleware` are small guards a public API needs.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import StatusCode
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.kit.logging import request_id_var
from services.kit.metrics import (
    HTTP_ERRORS,
    HTTP_LATENCY,
    HTTP_REQUESTS,
    enabled,
    method_label,
    trace_exemplar,
)

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


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, service: str, on_error: ErrorRenderer) -> None:
        self.app = app
        self.service = service
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = header(scope, b"x-request-id")
        request_id = incoming if incoming and _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        state: dict[str, Any] = {"status": 500, "started": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        method = method_label(scope["method"])
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute("venta.request_id", request_id)
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # the edge: nothing escapes without an answer and a log line
            log.exception("unhandled error on %s %s", method, scope.get("path"))
            span.record_exception(exc)
            span.set_status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}")
            if not state["started"]:
                await self.on_error(scope, exc)(scope, receive, send_with_id)
        finally:
            self._observe(scope, method, int(state["status"]), time.perf_counter() - started)
            request_id_var.reset(token)

    def _observe(self, scope: Scope, method: str, status: int, elapsed: float) -> None:
        route = route_template(scope)
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
