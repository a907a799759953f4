"""What every answer of the gateway has: probes, metrics by route template, request ids, headers, gzip, CORS,
the OpenAPI document, and the envelope for unknown routes and methods."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import httpx

from services.kit.logging import request_id_var
from tests.support.envelopes import assert_envelope
from tests.support.platform_hosts import Hosts, Platform


async def test_probes(api: httpx.AsyncClient) -> None:
    assert (await api.get("/health")).json() == {"status": "ok", "service": "gateway"}
    ready = await api.get("/health/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {
        "redis": "ok",
        "identity": "ok",
        "users": "ok",
        "vendors": "ok",
        "location": "ok",
        "search": "ok",
    }


async def test_metrics_use_route_templates(api: httpx.AsyncClient, platform: Platform) -> None:
    auth = await platform.auth()
    missing = uuid.uuid4()
    await api.get(f"/v1/vendors/{missing}", headers=auth)
    text = (await api.get("/metrics")).text
    assert (
        'venta_http_server_requests_total{method="GET",route="/v1/vendors/{id}",service="gateway",status="404"}' in text
    )
    assert str(missing) not in text
    assert "venta_http_server_request_duration_seconds_bucket" in text
    assert 'venta_breaker_state{breaker="gateway->vendors"} 0.0' in text


async def test_request_ids_in_out_and_passed_to_grpc(api: httpx.AsyncClient, platform: Platform) -> None:
    seen: list[str | None] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(request_id_var.get())

    handler = Capture(level=logging.DEBUG)
    grpc_log = logging.getLogger("venta.grpc")
    grpc_log.addHandler(handler)
    previous = grpc_log.level
    grpc_log.setLevel(logging.DEBUG)
    try:
        auth = await platform.auth()
        answer = await api.get(f"/v1/vendors/{uuid.uuid4()}", headers={**auth, "X-Request-ID": "req-from-client-42"})
    finally:
        grpc_log.removeHandler(handler)
        grpc_log.setLevel(previous)
    assert answer.headers["x-request-id"] == "req-from-client-42"
    assert answer.json()["error"]["requestId"] == "req-from-client-42"
    assert "req-from-client-42" in seen  # the vendor service logged the call under the same id
    generated = await api.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert generated.headers["x-request-id"] != "bad id\twith spaces" and len(generated.headers["x-request-id"]) == 32


async def test_security_headers_and_gzip(api: httpx.AsyncClient) -> None:
    answer = await api.get("/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert answer.headers["content-encoding"] == "gzip"
    for name in (
        "x-content-type-options",
        "x-frame-options",
        "referrer-policy",
        "content-security-policy",
        "strict-transport-security",
    ):
        assert name in answer.headers, name
    assert "server" not in answer.headers
    docs = await api.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert "content-security-policy" not in docs.headers  # the docs page loads its scripts


async def test_unknown_routes_and_methods_answer_the_envelope(api: httpx.AsyncClient) -> None:
    assert_envelope(await api.get("/nope"), 404, "NOT_FOUND", "ROUTE_NOT_FOUND")
    assert_envelope(await api.get("/v1/vendors/x/y"), 404, "NOT_FOUND", "ROUTE_NOT_FOUND")
    answer = await api.request("TRACE", "/v1/vendors")
    assert_envelope(answer, 405, "VALIDATION", "METHOD_NOT_ALLOWED")
    assert_envelope(await api.delete("/vendor"), 405, "VALIDATION", "METHOD_NOT_ALLOWED")


async def test_openapi_lists_every_route_with_models(api: httpx.AsyncClient) -> None:
    document = (await api.get("/openapi.json")).json()
    paths = document["paths"]
    for path, methods in {
        "/v1/vendors/{id}": {"get", "put", "patch", "delete"},
        "/vendor/{id}": {"get", "put", "patch"},
        "/v1/vendors": {"post"},
        "/vendor": {"post"},
        "/v1/users/me/vendors": {"get"},
        "/user/vendors": {"get"},
        "/v1/vendors/search": {"get"},
        "/v1/vendors/nearby": {"get"},
        "/v1/uploads/image": {"post"},
        "/upload/image": {"post"},
        "/v1/webhooks/clerk": {"post"},
        "/webhook/clerk": {"post"},
        "/v1/webhooks/revenuecat": {"post"},
        "/webhook/subscription": {"post"},
    }.items():
        assert methods <= set(paths[path]), (path, set(paths.get(path, {})))
    assert paths["/vendor/{id}"]["get"]["deprecated"] is True
    schemas = document["components"]["schemas"]
    assert {"VendorPublic", "VendorCreate", "ErrorEnvelope", "SearchResults"} <= set(schemas)
    assert all("422" not in op["responses"] for ops in paths.values() for op in ops.values())


async def test_cors_from_configuration(hosts: Hosts, platform: Platform, tmp_path: Path) -> None:
    settings = hosts.gateway_settings_over(
        platform,
        tmp_path,
        cors_origins="https://app.venta.example, https://admin.venta.example",
    )
    gateway = await hosts.start_gateway(settings)
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        preflight = await client.options(
            "/v1/vendors",
            headers={
                "Origin": "https://app.venta.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.venta.example"
        other = await client.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
    async with httpx.AsyncClient(base_url=platform.url) as client:  # no origins configured: no CORS at all
        plain = await client.get("/health", headers={"Origin": "https://app.venta.example"})
        assert "access-control-allow-origin" not in plain.headers
