"""The cached-read path (`services.gateway.hot_reads`): a cached vendor answered before routing, on real servers.

What a client sees must not depend on which path answered: the routed path is reached with the same vendor's id in
upper case (the route accepts any UUID form and reads the same entry; the cached-read path takes only the canonical
form), and the two answers are compared header by header. Rate limits are one budget whichever path counts, refusals
and bad tokens are the app's answers counted once, a miss is looked up once, and a dead Redis loses nothing.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.gateway.cache import PREFIX
from services.gateway.hot_reads import ROUTES, CachedVendorReads
from services.gateway.ratelimit import COUNTED, Counter
from services.gateway.resources import Resources
from services.kit import telemetry
from services.kit.http.server import AsgiServiceHost
from tests.support.envelopes import assert_envelope
from tests.support.platform_hosts import Hosts, Platform

VARYING = {"date", "x-request-id"}


async def _new_vendor(api: httpx.AsyncClient, auth: dict[str, str], name: str) -> str:
    return str((await api.post("/v1/vendors", json={"name": name}, headers=auth)).json()["id"])


async def _cached_vendor(api: httpx.AsyncClient, auth: dict[str, str], name: str) -> str:
    """A new vendor, read once so the gateway caches it; its id."""
    vendor_id = await _new_vendor(api, auth, name)
    assert (await api.get(f"/v1/vendors/{vendor_id}", headers=auth)).status_code == 200
    return vendor_id


def _resources(gateway: AsgiServiceHost) -> Resources:
    resources: Resources = gateway.app.state.resources  # type: ignore[attr-defined]
    return resources


def _metric(text: str, name: str, **labels: str) -> float:
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    for line in text.splitlines():
        if line.startswith(name + "{") and all(label in line for label in wanted):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def _count(platform_redis: str, key: str) -> int:
    client = redis.asyncio.Redis.from_url(platform_redis, decode_responses=True)
    try:
        return int(await client.get(key) or 0)
    finally:
        await client.aclose()


async def test_a_cached_vendor_is_answered_without_the_app(api: httpx.AsyncClient, platform: Platform) -> None:
    assert CachedVendorReads in [m.cls for m in platform.gateway.app.user_middleware]  # type: ignore[attr-defined]
    auth = await platform.auth()
    vendor_id = await _cached_vendor(api, auth, "Answered early")
    reached: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope)

    edge = CachedVendorReads(app, compress_from=1024)
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    def scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
        return {
            "type": "http",
            "method": "GET",
            "path": path,
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "app": platform.gateway.app,
        }

    bearer = [(b"authorization", auth["Authorization"].encode())]
    await edge(scope(f"/v1/vendors/{vendor_id}", bearer), receive, send)
    assert not reached
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 200
    assert sent[1]["body"].decode() == (await api.get(f"/v1/vendors/{vendor_id}", headers=auth)).text
    # without a token, upper-case, another method, another path: the app's to answer
    for path, headers, method in (
        (f"/v1/vendors/{vendor_id}", [], "GET"),
        (f"/v1/vendors/{vendor_id.upper()}", bearer, "GET"),
        (f"/v1/vendors/{vendor_id}", bearer, "DELETE"),
        (f"/v1/vendors/{vendor_id}/open", bearer, "GET"),
        ("/v1/vendors/nearby", bearer, "GET"),
    ):
        await edge({**scope(path, headers), "method": method}, receive, send)
    assert len(reached) == 5 and len(sent) == 2
    assert (
        reached[0]["state"][COUNTED][0] == "/v1/vendors/{id}" and reached[0]["state"][COUNTED][1] >= 1
    )  # the hit it counted, for the app's rate limit to decide on
    assert all("state" not in s for s in reached[1:])


@pytest.mark.parametrize("path", ["/v1/vendors/{id}", "/vendor/{id}"], ids=["v1", "alias"])
async def test_the_early_answer_is_the_routed_one(api: httpx.AsyncClient, platform: Platform, path: str) -> None:
    auth = await platform.auth()
    vendor_id = await _cached_vendor(api, auth, "Same either way")
    early = await api.get(path.format(id=vendor_id), headers=auth)
    routed = await api.get(path.format(id=vendor_id.upper()), headers=auth)
    assert early.status_code == routed.status_code == 200
    assert early.content == routed.content
    assert {k: v for k, v in early.headers.items() if k not in VARYING} == {
        k: v for k, v in routed.headers.items() if k not in VARYING
    }
    assert early.headers["x-request-id"] != routed.headers["x-request-id"]


async def test_early_answers_are_counted_and_traced_under_the_route_template(
    api: httpx.AsyncClient, platform: Platform
) -> None:
    auth = await platform.auth()
    vendor_id = await _cached_vendor(api, auth, "Observed")
    exporter = InMemorySpanExporter()
    telemetry.configure_tracing("gateway", extra_processor=SimpleSpanProcessor(exporter))
    try:
        before = (await api.get("/metrics")).text
        for path in (f"/v1/vendors/{vendor_id}", f"/vendor/{vendor_id}"):
            assert (await api.get(path, headers=auth)).status_code == 200
        after = (await api.get("/metrics")).text
        spans = exporter.get_finished_spans()
    finally:
        exporter.shutdown()
    for template in ("/v1/vendors/{id}", "/vendor/{id}"):
        labels = {"route": template, "method": "GET", "status": "200"}
        name = "venta_http_server_requests_total"
        assert _metric(after, name, **labels) - _metric(before, name, **labels) == 1, template
    hits = [
        _metric(text, "venta_cache_requests_total", cache="gateway_vendor", result="hit") for text in (before, after)
    ]
    assert hits[1] - hits[0] == 2
    servers = [s for s in spans if s.kind.name == "SERVER" and s.name.startswith("GET /v")]
    names = sorted((s.name, (s.attributes or {}).get("http.route")) for s in servers)
    assert names == [("GET /v1/vendors/{id}", "/v1/vendors/{id}"), ("GET /vendor/{id}", "/vendor/{id}")]


async def _gateway(hosts: Hosts, platform: Platform, tmp_path: Path, **overrides: Any) -> AsgiServiceHost:
    return await hosts.start_gateway(hosts.gateway_settings_over(platform, tmp_path, **overrides))


@dataclass(frozen=True)
class Limited:
    gateway: AsgiServiceHost
    auth: dict[str, str]
    vendor_id: str
    counter: Counter  # the fixed-window key its reads of the vendor count in


async def _limited(
    hosts: Hosts, platform: Platform, api: httpx.AsyncClient, tmp_path: Path, *, limit: str, name: str
) -> Limited:
    """A gateway of its own with rate limit `limit`, and a vendor it reads from the cache."""
    gateway = await _gateway(hosts, platform, tmp_path, rate_limit=limit)
    auth = await platform.auth()
    vendor_id = await _cached_vendor(api, auth, name)
    counter = _resources(gateway).rate_limiter.counter("/v1/vendors/{id}", "127.0.0.1")
    assert counter is not None
    return Limited(gateway, auth, vendor_id, counter)


async def test_cached_and_routed_reads_share_one_rate_limit(
    hosts: Hosts, platform: Platform, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    limited = await _limited(hosts, platform, api, tmp_path, limit="6/47 seconds", name="Limited")
    auth, vendor_id, limiter = limited.auth, limited.vendor_id, _resources(limited.gateway).rate_limiter
    async with httpx.AsyncClient(base_url=limited.gateway.url) as client:
        answers = []
        for n in range(8):  # early, routed, early, routed ...
            answers.append(
                await client.get(f"/v1/vendors/{vendor_id if n % 2 == 0 else vendor_id.upper()}", headers=auth)
            )
        metrics = (await client.get("/metrics")).text
    assert [a.status_code for a in answers] == [200] * 6 + [429] * 2
    assert {a.headers["x-ratelimit-limit"] for a in answers} == {"6"}
    refused = assert_envelope(answers[6], 429, "RATE_LIMIT", "RATE_LIMITED")
    assert 1 <= int(answers[6].headers["retry-after"]) <= 47 and answers[6].headers["x-ratelimit-remaining"] == "0"
    assert refused["path"] == f"/v1/vendors/{vendor_id}"
    assert _metric(metrics, "venta_rate_limit_rejections_total", route="/v1/vendors/{id}") == 2
    # every request counted exactly once, in the key and window limits itself reads
    assert await _count(platform.redis_url, limited.counter.key) == 8
    item = limiter.item_for("/v1/vendors/{id}")
    stats = await limiter.strategy.get_window_stats(item, "venta-rl", "127.0.0.1", "/v1/vendors/{id}")
    assert stats.remaining == 0 and 0 < stats.reset_time - time.time() <= 47


async def test_bad_tokens_get_the_apps_answer_and_count_once(
    hosts: Hosts, platform: Platform, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    limited = await _limited(hosts, platform, api, tmp_path, limit="1000/43 seconds", name="Guarded")
    auth = limited.auth
    forged = re.sub(r"\.[^.]+$", ".AAAA", auth["Authorization"])
    async with httpx.AsyncClient(base_url=limited.gateway.url) as client:
        url = f"/v1/vendors/{limited.vendor_id}"
        assert_envelope(await client.get(url), 401, "AUTHENTICATION", "TOKEN_MISSING")
        assert_envelope(await client.get(url, headers={"Authorization": "Basic eDp5"}), 401, "AUTHENTICATION")
        assert_envelope(await client.get(url, headers={"Authorization": forged}), 401, "AUTHENTICATION")
        assert_envelope(await client.get(url, headers={"Authorization": "Bearer not-a-jwt"}), 401, "AUTHENTICATION")
        assert (await client.get(url, headers=auth)).status_code == 200
    assert await _count(platform.redis_url, limited.counter.key) == 5


async def test_a_miss_is_looked_up_once_then_served_early(
    hosts: Hosts, platform: Platform, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    gateway = await _gateway(hosts, platform, tmp_path)
    auth = await platform.auth()
    vendor_id = await _new_vendor(api, auth, "Missed")
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        before = (await client.get("/metrics")).text
        first = await client.get(f"/v1/vendors/{vendor_id}", headers=auth)
        middle = (await client.get("/metrics")).text
        second = await client.get(f"/v1/vendors/{vendor_id}", headers=auth)
        after = (await client.get("/metrics")).text
    assert first.status_code == second.status_code == 200 and first.content == second.content
    assert first.json()["name"] == "Missed"

    def lookups(text: str) -> list[float]:
        return [_metric(text, "venta_cache_requests_total", cache="gateway_vendor", result=r) for r in ("miss", "hit")]

    assert [a - b for a, b in zip(lookups(middle), lookups(before), strict=True)] == [1, 0]
    assert [a - b for a, b in zip(lookups(after), lookups(middle), strict=True)] == [0, 1]


async def test_an_entry_large_enough_to_compress_is_answered_by_the_route_from_one_lookup(
    hosts: Hosts, platform: Platform, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    gateway = await _gateway(hosts, platform, tmp_path)
    auth = await platform.auth()
    created = await api.post(
        "/v1/vendors", json={"name": "Long Story", "description": "A taco truck. " * 70}, headers=auth
    )
    vendor_id = created.json()["id"]
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        plain = await client.get(f"/v1/vendors/{vendor_id}", headers={**auth, "Accept-Encoding": "identity"})  # cached
        before = (await client.get("/metrics")).text
        zipped = await client.get(f"/v1/vendors/{vendor_id}", headers={**auth, "Accept-Encoding": "gzip"})
        identity = await client.get(f"/v1/vendors/{vendor_id}", headers={**auth, "Accept-Encoding": "identity"})
        after = (await client.get("/metrics")).text
    assert plain.status_code == zipped.status_code == identity.status_code == 200
    assert len(plain.content) >= 1024 and "content-encoding" not in plain.headers
    assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["vary"] == "Accept-Encoding"
    assert int(zipped.headers["content-length"]) < len(plain.content)
    assert zipped.content == identity.content == plain.content  # httpx inflated the first
    assert zipped.headers["x-ratelimit-limit"] == plain.headers["x-ratelimit-limit"]

    def lookups(text: str) -> list[float]:
        return [_metric(text, "venta_cache_requests_total", cache="gateway_vendor", result=r) for r in ("miss", "hit")]

    # two reads, two hits: the route answered with what the early path found instead of looking it up again
    assert [a - b for a, b in zip(lookups(after), lookups(before), strict=True)] == [0, 2]


async def test_a_dead_redis_loses_no_read(
    hosts: Hosts, platform: Platform, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    auth = await platform.auth()
    vendor_id = await _cached_vendor(api, auth, "Served anyway")
    gateway = await _gateway(hosts, platform, tmp_path, redis_url="redis://127.0.0.1:9", redis_timeout_s=0.2)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        answers = [await client.get(f"/v1/vendors/{vendor_id}", headers=auth) for _ in range(3)]
        metrics = (await client.get("/metrics")).text
    assert [a.status_code for a in answers] == [200] * 3
    assert {a.json()["name"] for a in answers} == {"Served anyway"}
    # each read failed in Redis once (counted and looked up together), not once more on the routed path
    assert _metric(metrics, "venta_cache_requests_total", cache="gateway_vendor", result="error") == 3


async def test_scripts_redis_forgot_are_loaded_again(api: httpx.AsyncClient, platform: Platform) -> None:
    """A restarted (or `SCRIPT FLUSH`ed) Redis has none of the cache's scripts: the next call loads them."""
    auth = await platform.auth()
    cached = await _cached_vendor(api, auth, "Remembered")
    fresh = await _new_vendor(api, auth, "Filled")
    client = redis.asyncio.Redis.from_url(platform.redis_url, decode_responses=True)
    try:
        await client.script_flush()
        assert (await api.get(f"/v1/vendors/{cached}", headers=auth)).json()["name"] == "Remembered"
        await client.script_flush()
        filled = await api.get(f"/v1/vendors/{fresh}", headers=auth)  # a miss: counted, looked up, then stored
        assert filled.json()["name"] == "Filled"
        assert await client.get(PREFIX + fresh) == filled.text
    finally:
        await client.aclose()


def test_the_early_paths_are_the_get_vendor_routes(platform: Platform) -> None:
    """The early path answers only for routes the app has: each template is GET vendor in the OpenAPI document."""
    paths = platform.gateway.app.openapi()["paths"]  # type: ignore[attr-defined]
    for template in ROUTES.values():
        assert paths[template]["get"]["summary"] == "Get a vendor", template


async def test_garbage_next_to_a_cached_id_gets_the_apps_answer(api: httpx.AsyncClient, platform: Platform) -> None:
    auth = await platform.auth()
    vendor_id = await _cached_vendor(api, auth, "Neighbour")
    for path in (f"{vendor_id}0", f"{vendor_id[:-1]}g", f"{vendor_id}%00", f"{vendor_id}/open"):
        answer = await api.get(f"/v1/vendors/{path}", headers=auth)
        assert 400 <= answer.status_code < 500, (path, answer.status_code)
        assert_envelope(answer, answer.status_code, answer.json()["error"]["type"])
    for slash in ("/", "%2F"):  # the app's own redirect to the path without the slash
        answer = await api.get(f"/v1/vendors/{vendor_id}{slash}", headers=auth)
        assert answer.status_code == 307 and answer.headers["location"].endswith(f"/v1/vendors/{vendor_id}")
    unknown = "00000000-0000-4000-8000-000000000000"  # canonical, no such vendor: a miss, then the route's 404
    for _ in range(2):
        assert_envelope(await api.get(f"/v1/vendors/{unknown}", headers=auth), 404, "NOT_FOUND")


@pytest.mark.parametrize("strategy", ["moving-window", "sliding-window-counter"])
async def test_other_strategies_count_through_the_app(
    hosts: Hosts, platform: Platform, api: httpx.AsyncClient, tmp_path: Path, strategy: str
) -> None:
    """Only the fixed window is a plain counter the early path can increment; the others keep limits' own scripts."""
    gateway = await _gateway(hosts, platform, tmp_path, rate_limit="3/41 seconds", rate_limit_strategy=strategy)
    assert _resources(gateway).rate_limiter.counter("/v1/vendors/{id}", "127.0.0.1") is None
    auth = await platform.auth()
    vendor_id = await _cached_vendor(api, auth, "Windowed")
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        answers = [await client.get(f"/v1/vendors/{vendor_id}", headers=auth) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert {a.json()["name"] for a in answers[:3]} == {"Windowed"}
    assert_envelope(answers[3], 429, "RATE_LIMIT", "RATE_LIMITED")
