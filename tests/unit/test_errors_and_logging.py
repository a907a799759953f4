"""The one error mapping, and the JSON log line shape of SPEC section 10."""

from __future__ import annotations

import json
import logging

import grpc
import pytest
from opentelemetry import trace
from sqlalchemy import exc as sa_exc

from services.kit.errors import InvalidArgument, NotFound, PermissionDenied, Unavailable, to_status
from services.kit.logging import JsonFormatter, request_id_var
from services.kit.telemetry import configure_tracing


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidArgument("name", "is required"), grpc.StatusCode.INVALID_ARGUMENT),
        (NotFound("x"), grpc.StatusCode.NOT_FOUND),
        (PermissionDenied("x"), grpc.StatusCode.PERMISSION_DENIED),
        (Unavailable("x"), grpc.StatusCode.UNAVAILABLE),
        (ConnectionRefusedError(111, "refused"), grpc.StatusCode.UNAVAILABLE),
        (TimeoutError(), grpc.StatusCode.UNAVAILABLE),
        (sa_exc.OperationalError("SELECT 1", {}, ConnectionError("gone")), grpc.StatusCode.UNAVAILABLE),
        (ZeroDivisionError("boom"), grpc.StatusCode.INTERNAL),
        (KeyError("secret-internal-detail"), grpc.StatusCode.INTERNAL),
    ],
)
def test_error_to_status(error: Exception, code: grpc.StatusCode) -> None:
    got, message = to_status(error)
    assert got == code
    if code == grpc.StatusCode.INTERNAL:
        assert message == "internal error"  # nothing of the exception leaks to the client


def test_invalid_argument_names_the_field() -> None:
    assert to_status(InvalidArgument("sw_location.lat", "must be between -90 and 90"))[1].startswith("sw_location.lat:")


def test_json_log_line_has_ids() -> None:
    configure_tracing("test")
    record = logging.LogRecord("venta.test", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    record.vendor_count = 3
    token = request_id_var.set("req-1")
    try:
        with trace.get_tracer("test").start_as_current_span("span") as span:
            line = json.loads(JsonFormatter("vendors").format(record))
            context = span.get_span_context()
    finally:
        request_id_var.reset(token)
    assert {k: line[k] for k in ("level", "service", "message", "request_id", "vendor_count")} == {
        "level": "INFO",
        "service": "vendors",
        "message": "hello world",
        "request_id": "req-1",
        "vendor_count": 3,
    }
    assert line["trace_id"] == format(context.trace_id, "032x") and line["span_id"] == format(context.span_id, "016x")
    assert line["timestamp"].endswith("+00:00")


async def test_a_peer_failure_answered_as_500_names_its_cause_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    """The client reads "internal error"; the log line says which peer answered what (a 500 must be explainable)."""
    import httpx
    from fastapi import FastAPI

    from services.kit.grpc.client import PeerUnavailable
    from services.kit.http.handlers import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise PeerUnavailable("vendors is unavailable (INTERNAL)", peer_code=grpc.StatusCode.INTERNAL)

    with caplog.at_level(logging.ERROR, logger="venta.http"):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client:
            answer = await client.get("/boom")
    assert answer.status_code == 500
    assert answer.json()["error"]["message"] == "internal error"
    assert [r.getMessage() for r in caplog.records] == ["GET /boom: PeerUnavailable: vendors is unavailable (INTERNAL)"]
