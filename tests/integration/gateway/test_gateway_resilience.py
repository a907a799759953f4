"""Failure behaviour over real processes: a stopped vendor service turns into fast 502s behind an open breaker and
recovers through half-open without restarting the gateway; rate limits hold across two gateway processes."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pybreaker
import pytest

from services.contracts.venta.vendor.v1 import vendor_pb2
from services.devkit.servers import free_port
from services.gateway.resources import Resources
from services.kit.grpc.client import PeerUnavailable
from services.vendors import app as vendors_app
from services.vendors.config import VendorSettings
from tests.support.envelopes import assert_envelope
from tests.support.images import png
from tests.support.platform_hosts import Hosts, Platform

pytestmark = pytest.mark.slow


async def test_breaker_opens_fails_fast_and_recovers(hosts: Hosts, platform: Platform, tmp_path: Path) -> None:
    port, database = free_port(), f"gw_breaker_{uuid.uuid4().hex[:8]}"
    vendors = await hosts.start_grpc(
        vendors_app.build, VendorSettings, vendors_app.MIGRATIONS, grpc_port=port, database=database
    )
    settings = hosts.gateway_settings_over(
        platform,
        tmp_path,
        vendors=vendors,
        breaker_fail_max=3,
        breaker_reset_timeout_s=1.0,
        grpc_timeout_s=1.0,
        vendor_cache_ttl_s=0,
    )
    gateway = await hosts.start_gateway(settings)
    resources: Resources = gateway.app.state.resources  # type: ignore[attr-defined]
    auth = await platform.auth()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as api:
        vendor_id = (await api.post("/v1/vendors", json={"name": "Resilient"}, headers=auth)).json()["id"]
        assert (await api.get(f"/v1/vendors/{vendor_id}", headers=auth)).status_code == 200

        await vendors.stop()
        hosts.grpc.remove(vendors)
        codes = []
        for _ in range(settings.breaker_fail_max):
            codes.append(
                assert_envelope(await api.get(f"/v1/vendors/{vendor_id}", headers=auth), 502, "EXTERNAL_SERVICE")[
                    "code"
                ]
            )
        assert resources.vendors.breaker.current_state == pybreaker.STATE_OPEN, codes

        http_ms, call_ms = [], []
        for _ in range(20):
            started = time.perf_counter()
            answer = await api.get(f"/v1/vendors/{vendor_id}", headers=auth)
            http_ms.append((time.perf_counter() - started) * 1000)
            assert assert_envelope(answer, 502, "EXTERNAL_SERVICE", "CIRCUIT_OPEN")["message"].endswith(
                "(circuit open)"
            )
            started = time.perf_counter()
            with pytest.raises(PeerUnavailable):
                await resources.vendors.unary(
                    resources.vendors.stub.GetVendorById, vendor_pb2.VendorLookupByIdData(id=vendor_id)
                )
            call_ms.append((time.perf_counter() - started) * 1000)
        print(
            f"\nbreaker open: HTTP round trip p50 {statistics.median(http_ms):.2f} ms, "
            f"refused peer call p50 {statistics.median(call_ms):.3f} ms"
        )
        assert statistics.median(call_ms) < 10, call_ms
        assert statistics.median(http_ms) < 100, http_ms  # loose: shared CI machines

        ready = await api.get("/health/ready")
        assert ready.status_code == 503 and ready.json()["checks"]["vendors"].startswith("failing")

        restarted = await hosts.start_grpc(
            vendors_app.build, VendorSettings, vendors_app.MIGRATIONS, grpc_port=port, database=database
        )
        assert restarted.grpc_port == port
        deadline = time.monotonic() + 30
        while True:
            answer = await api.get(f"/v1/vendors/{vendor_id}", headers=auth)
            if answer.status_code == 200:
                break
            assert time.monotonic() < deadline, answer.text
            await asyncio.sleep(0.2)
        assert answer.json()["name"] == "Resilient"
        assert resources.vendors.breaker.current_state == pybreaker.STATE_CLOSED
        metrics = (await api.get("/metrics")).text
        assert 'venta_breaker_transitions_total{breaker="gateway->vendors",state="half-open"}' in metrics
        assert (await api.get("/health/ready")).status_code == 200


async def test_a_route_can_have_its_own_limit(hosts: Hosts, platform: Platform, tmp_path: Path) -> None:
    settings = hosts.gateway_settings_over(
        platform,
        tmp_path,
        rate_limit="50/53 seconds",
        rate_limit_routes={"/v1/users/me/vendors": "3/53 seconds"},
    )
    gateway = await hosts.start_gateway(settings)
    auth = await platform.auth()
    async with httpx.AsyncClient(base_url=gateway.url) as api:
        answers = [await api.get("/v1/users/me/vendors", headers=auth) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert answers[0].headers["x-ratelimit-limit"] == "3"
        assert answers[3].headers["x-ratelimit-remaining"] == "0"
        refused = assert_envelope(answers[3], 429, "RATE_LIMIT", "RATE_LIMITED")
        assert refused["path"] == "/v1/users/me/vendors"
        assert 1 <= int(answers[3].headers["retry-after"]) <= 53
        other = await api.get("/v1/vendors/nearby", params={"sw": "1,1", "ne": "2,2"}, headers=auth)
        assert other.status_code == 200 and other.headers["x-ratelimit-limit"] == "50"
        assert (await api.get("/health")).status_code == 200  # probes are never limited
        metrics = (await api.get("/metrics")).text
        assert 'venta_rate_limit_rejections_total{route="/v1/users/me/vendors",service="gateway"}' in metrics


async def test_every_answer_of_a_limited_route_carries_its_limit(
    hosts: Hosts, platform: Platform, tmp_path: Path
) -> None:
    """Not only the JSON FastAPI builds: the answers routes build themselves and the error envelopes too."""
    settings = hosts.gateway_settings_over(
        platform, tmp_path, rate_limit="40/53 seconds", notifications_url=platform.settings.notifications_url
    )
    gateway = await hosts.start_gateway(settings)
    auth = await platform.auth()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as api:
        created = await api.post("/v1/vendors", json={"name": "Limits Cart"}, headers=auth)
        uploaded = await api.post("/v1/uploads/image", files={"file": ("a.png", png(), "image/png")}, headers=auth)
        assert (created.status_code, uploaded.status_code) == (201, 201), (created.text, uploaded.text)
        vendor = f"/v1/vendors/{created.json()['id']}"
        answers = {
            "created (FastAPI's JSON)": created,
            "uploaded (FastAPI's JSON)": uploaded,
            "a vendor, read": await api.get(vendor, headers=auth),
            "a vendor, cached": await api.get(vendor, headers=auth),
            "an uploaded file": await api.get(uploaded.json()["url"].removeprefix(settings.public_url)),
            "favourites, forwarded": await api.get("/v1/users/me/favourites", headers=auth),
            "no such vendor (404 envelope)": await api.get(f"/v1/vendors/{uuid.uuid4()}", headers=auth),
            "garbage query (400 envelope)": await api.get("/v1/vendors/nearby", params={"sw": "x"}, headers=auth),
            "no token (401 envelope)": await api.get("/v1/users/me/favourites"),
        }
    statuses = {what: answer.status_code for what, answer in answers.items()}
    assert statuses == {
        "created (FastAPI's JSON)": 201,
        "uploaded (FastAPI's JSON)": 201,
        "a vendor, read": 200,
        "a vendor, cached": 200,
        "an uploaded file": 200,
        "favourites, forwarded": 200,
        "no such vendor (404 envelope)": 404,
        "garbage query (400 envelope)": 400,
        "no token (401 envelope)": 401,
    }
    limits = {what: answer.headers.get_list("x-ratelimit-limit") for what, answer in answers.items()}
    assert limits == {what: ["40"] for what in answers}, limits  # once each, never twice


@pytest.mark.parametrize("trusted", [True, False], ids=["behind-trusted-proxy", "header-from-anyone"])
async def test_rate_limits_key_on_the_client_behind_a_trusted_proxy(
    hosts: Hosts, platform: Platform, tmp_path: Path, trusted: bool
) -> None:
    """Behind an ingress every request comes from the proxy's address: with the proxy trusted, each user keeps their
    own budget, whatever a client puts in front of the proxy's entry; without it, X-Forwarded-For is anyone's to
    write and is ignored, so it cannot dodge the limit."""
    settings = hosts.gateway_settings_over(
        platform,
        tmp_path,
        rate_limit_routes={"/v1/users/me/vendors": "2/47 seconds"},
        forwarded_allow_ips="127.0.0.0/8" if trusted else None,
    )
    gateway = await hosts.start_gateway(settings)
    auth = await platform.auth()
    alice, bob = (f"198.51.100.{n}" for n in uuid.uuid4().bytes[:2])
    async with httpx.AsyncClient(base_url=gateway.url) as api:

        async def call(client_ip: str) -> int:
            # what an ingress sends: whatever the client claimed, then the address the proxy saw
            forged = f"203.0.113.{uuid.uuid4().bytes[0]}"
            headers = {**auth, "X-Forwarded-For": f"{forged}, {client_ip}"}
            return (await api.get("/v1/users/me/vendors", headers=headers)).status_code

        alice_calls = [await call(alice) for _ in range(3)]
        bob_calls = [await call(bob) for _ in range(2)]
    assert alice_calls == [200, 200, 429]
    assert bob_calls == ([200, 200] if trusted else [429, 429])


@pytest.fixture
async def two_gateway_processes(platform: Platform, tmp_path: Path) -> AsyncIterator[list[str]]:
    ports = [free_port(), free_port()]
    env = {
        **os.environ,
        "VENTA_LOG_LEVEL": "WARNING",
        "VENTA_HOST": "127.0.0.1",
        "VENTA_REDIS_URL": platform.redis_url,
        "VENTA_AUTH_ISSUER": platform.issuer,
        "VENTA_USERS_ADDR": platform.settings.users_addr,
        "VENTA_VENDORS_ADDR": platform.settings.vendors_addr,
        "VENTA_LOCATION_ADDR": platform.settings.location_addr,
        "VENTA_UPLOAD_DIR": str(tmp_path),
        "VENTA_RATE_LIMIT": "10/59 seconds",
        "VENTA_NATS_URL": platform.settings.nats_url,
        "VENTA_SEARCH_DATABASE_URL": platform.settings.search_database_url or "",
        "VENTA_SHUTDOWN_GRACE_S": "2",
    }
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.cli",
            "serve",
            "gateway",
            env={**env, "VENTA_HTTP_PORT": str(port)},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=open(tmp_path / f"gateway-{port}.log", "wb"),  # noqa: ASYNC230, SIM115
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        async with httpx.AsyncClient() as client:
            for url, proc in zip(urls, procs, strict=True):
                deadline = time.monotonic() + 60
                while True:
                    assert proc.returncode is None, (tmp_path / f"gateway-{url[-5:]}.log").read_text()
                    try:
                        if (await client.get(f"{url}/health/ready")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert time.monotonic() < deadline, "gateway process not ready"
                    await asyncio.sleep(0.2)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                raise


async def test_rate_limit_holds_across_two_gateway_processes(
    platform: Platform, two_gateway_processes: list[str]
) -> None:
    auth = await platform.auth()
    statuses: list[int] = []
    retry_after: list[int] = []
    async with httpx.AsyncClient(timeout=10) as client:
        for i in range(20):  # alternate between the two processes
            answer = await client.get(f"{two_gateway_processes[i % 2]}/v1/users/me/vendors", headers=auth)
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                assert_envelope(answer, 429, "RATE_LIMIT", "RATE_LIMITED")
                retry_after.append(int(answer.headers["retry-after"]))
    assert statuses.count(200) == 10 and statuses.count(429) == 10, statuses
    assert statuses[:10] == [200] * 10  # the 11th request overall is refused, whichever process it reached
    assert all(1 <= seconds <= 59 for seconds in retry_after), retry_after


async def test_breaker_state_shared_through_redis(hosts: Hosts, platform: Platform, tmp_path: Path) -> None:
    """With VENTA_BREAKER_REDIS, a breaker opened by one replica is open for the others at once."""
    vendors = await hosts.start_grpc(vendors_app.build, VendorSettings, vendors_app.MIGRATIONS)
    namespace_suffix = uuid.uuid4().hex[:6]
    settings = hosts.gateway_settings_over(
        platform,
        tmp_path,
        vendors=vendors,
        breaker_fail_max=2,
        breaker_reset_timeout_s=60,
        breaker_redis=True,
        vendor_cache_ttl_s=0,
        service_name=f"gateway-{namespace_suffix}",
    )
    first, second = await hosts.start_gateway(settings), await hosts.start_gateway(settings)
    auth = await platform.auth()
    await vendors.stop()
    hosts.grpc.remove(vendors)
    missing = uuid.uuid4()
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(f"{first.url}/v1/vendors/{missing}", headers=auth)
        assert_envelope(answer, 502, "EXTERNAL_SERVICE", "UNAVAILABLE")
        answer = await client.get(f"{first.url}/v1/vendors/{missing}", headers=auth)  # trips it (fail_max 2)
        assert_envelope(answer, 502, "EXTERNAL_SERVICE", "CIRCUIT_OPEN")
        from_second = await client.get(f"{second.url}/v1/vendors/{missing}", headers=auth)
        assert_envelope(from_second, 502, "EXTERNAL_SERVICE", "CIRCUIT_OPEN")
