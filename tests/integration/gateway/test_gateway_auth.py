"""Every way a token can be wrong is a 401 in the envelope; a good one maps to the internal user (cached 1 h in
Redis, seconds in the process)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import redis.asyncio
from prometheus_client import REGISTRY

from services.kit.auth.users import CACHE_PREFIX
from tests.support import tokens
from tests.support.envelopes import assert_envelope
from tests.support.platform_hosts import JWKS_MIN_REFRESH_S, Platform, new_clerk_id

ROUTE = "/v1/users/me/vendors"


async def _known_user(platform: Platform) -> str:
    user = new_clerk_id()
    await platform.token(user)  # the identity provider creates the user
    return user


async def test_a_valid_token_resolves_the_user_and_caches_the_id(api: httpx.AsyncClient, platform: Platform) -> None:
    user = await _known_user(platform)
    token = tokens.signed(platform.keys, tokens.claims(platform.issuer, user))
    answer = await api.get(ROUTE, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"vendors": []}
    cache = redis.asyncio.Redis.from_url(platform.redis_url, decode_responses=True)
    try:
        assert await cache.get(CACHE_PREFIX + user)
        assert 3500 < await cache.ttl(CACHE_PREFIX + user) <= 3600
    finally:
        await cache.aclose()


async def test_the_id_is_also_kept_in_the_process_for_seconds(api: httpx.AsyncClient, platform: Platform) -> None:
    """Within `VENTA_USER_LOCAL_TTL_S` the process answers from its own copy without asking Redis; after it, Redis
    again. Shown by rewriting the Redis entry behind the gateway's back: the other user's id under this subject."""
    owner, caller = await _known_user(platform), await _known_user(platform)
    owner_auth, caller_auth = await platform.auth(owner), await platform.auth(caller)
    created = await api.post("/v1/vendors", json={"name": "Kept"}, headers=owner_auth)
    assert created.status_code == 201, created.text
    directory = platform.gateway.app.state.resources.authenticator.directory  # type: ignore[attr-defined]
    saved, directory.local_ttl_s = directory.local_ttl_s, 1.0
    cache = redis.asyncio.Redis.from_url(platform.redis_url, decode_responses=True)
    try:
        assert (await api.get(ROUTE, headers=caller_auth)).json() == {"vendors": []}  # now kept for 1 s
        await cache.set(CACHE_PREFIX + caller, await cache.get(CACHE_PREFIX + owner))
        assert (await api.get(ROUTE, headers=caller_auth)).json() == {"vendors": []}  # the process's copy
        await asyncio.sleep(1.2)
        again = await api.get(ROUTE, headers=caller_auth)  # expired here: Redis's (rewritten) answer
        assert again.json() == {"vendors": [{"id": created.json()["id"], "name": "Kept"}]}
    finally:
        directory.local_ttl_s = saved
        await cache.delete(CACHE_PREFIX + caller)
        await cache.aclose()


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("expired", "TOKEN_EXPIRED"),
        ("not_yet_valid", "TOKEN_NOT_YET_VALID"),
        ("wrong_issuer", "TOKEN_WRONG_ISSUER"),
        ("wrong_azp", "TOKEN_WRONG_PARTY"),
        ("no_azp", "TOKEN_WRONG_PARTY"),
        ("no_exp", "TOKEN_MISSING_CLAIM"),
        ("alg_none", "TOKEN_BAD_ALGORITHM"),
        ("hs256_public_key", "TOKEN_BAD_ALGORITHM"),
        ("unknown_kid", "UNKNOWN_KEY"),
        ("known_kid_foreign_key", "TOKEN_BAD_SIGNATURE"),
        ("tampered", "TOKEN_BAD_SIGNATURE"),
        ("garbage", "TOKEN_MALFORMED"),
        ("unknown_user", "USER_NOT_FOUND"),
    ],
)
async def test_bad_tokens_are_401(api: httpx.AsyncClient, platform: Platform, case: str, reason: str) -> None:
    user = await _known_user(platform)
    iss, keys, now = platform.issuer, platform.keys, int(time.time())
    good = tokens.claims(iss, user)
    token = {
        "expired": lambda: tokens.signed(keys, tokens.claims(iss, user, iat=now - 7200, nbf=now - 7200, exp=now - 60)),
        "not_yet_valid": lambda: tokens.signed(keys, tokens.claims(iss, user, nbf=now + 600)),
        "wrong_issuer": lambda: tokens.signed(keys, tokens.claims("https://clerk.evil.example", user)),
        "wrong_azp": lambda: tokens.signed(keys, tokens.claims(iss, user, azp="https://evil.example")),
        "no_azp": lambda: tokens.signed(keys, tokens.claims(iss, user, azp=None)),
        "no_exp": lambda: tokens.signed(keys, tokens.claims(iss, user, exp=None)),
        "alg_none": lambda: tokens.unsigned(keys, good),
        "hs256_public_key": lambda: tokens.hs256_with_public_key(keys, good),
        "unknown_kid": lambda: tokens.foreign_key(good, kid="not-a-published-kid"),
        "known_kid_foreign_key": lambda: tokens.foreign_key(good, kid=keys.current.kid),
        "tampered": lambda: _tamper(tokens.signed(keys, good), new_clerk_id()),
        "garbage": lambda: "not.a.token",
        "unknown_user": lambda: tokens.signed(keys, tokens.claims(iss, new_clerk_id())),
    }[case]()
    answer = await api.get(ROUTE, headers={"Authorization": f"Bearer {token}"})
    error = assert_envelope(answer, 401, "AUTHENTICATION", reason)
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert error["path"] == ROUTE


def _tamper(token: str, subject: str) -> str:
    header, _, signature = token.split(".")
    payload = tokens.b64(f'{{"sub":"{subject}","iss":"x","exp":9999999999,"iat":1}}'.encode())
    return f"{header}.{payload}.{signature}"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "TOKEN_MISSING"),
        ("", "TOKEN_MISSING"),
        ("Bearer", "TOKEN_MISSING"),
        ("Basic dXNlcjpwdw==", "TOKEN_MISSING"),
        ("token-without-scheme", "TOKEN_MISSING"),
        ("Bearer  x y", "TOKEN_MALFORMED"),
        ("Bearer " + "a" * 9000, "TOKEN_MALFORMED"),
    ],
)
async def test_missing_or_malformed_authorization_is_401(
    api: httpx.AsyncClient, header: str | None, reason: str
) -> None:
    headers = {} if header is None else {"Authorization": header}
    assert_envelope(await api.get(ROUTE, headers=headers), 401, "AUTHENTICATION", reason)


async def test_every_protected_route_refuses_a_missing_token(api: httpx.AsyncClient) -> None:
    vid = "00000000-0000-4000-8000-000000000000"
    calls = [
        api.get(f"/v1/vendors/{vid}"),
        api.get(f"/vendor/{vid}"),
        api.post("/v1/vendors", json={"name": "x"}),
        api.post("/vendor", json={"name": "x"}),
        api.put(f"/v1/vendors/{vid}", json={}),
        api.patch(f"/vendor/{vid}", json={}),
        api.delete(f"/v1/vendors/{vid}"),
        api.get("/v1/users/me/vendors"),
        api.get("/user/vendors"),
        api.get("/v1/vendors/nearby", params={"sw": "1,1", "ne": "2,2"}),
        api.post("/v1/uploads/image", files={"file": ("a.png", b"\x89PNG\r\n\x1a\n")}),
        api.post("/upload/image", files={"file": ("a.png", b"\x89PNG\r\n\x1a\n")}),
    ]
    for call in calls:
        answer = await call
        assert_envelope(answer, 401, "AUTHENTICATION", "TOKEN_MISSING")


async def test_key_rotation_is_picked_up_from_the_jwks(api: httpx.AsyncClient, platform: Platform) -> None:
    user = await _known_user(platform)
    before = platform.keys.current.kid
    async with httpx.AsyncClient() as client:
        rotated = await client.post(f"{platform.identity.url}/v1/keys/rotate")
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["kid"] != before and before in rotated.json()["published"]
    await asyncio.sleep(platform.settings.jwks_min_refresh_interval_s)  # the refetch rate limit allows one
    fresh = await platform.auth(user)
    assert (await api.get(ROUTE, headers=fresh)).status_code == 200
    old = tokens.signed_with(platform.keys.keys[-2], tokens.claims(platform.issuer, user))
    assert (await api.get(ROUTE, headers={"Authorization": f"Bearer {old}"})).status_code == 200


async def test_unknown_key_ids_do_not_hammer_the_issuer(api: httpx.AsyncClient, platform: Platform) -> None:
    labels = {"service": "identity", "route": "/.well-known/jwks.json", "method": "GET", "status": "200"}
    before = REGISTRY.get_sample_value("venta_http_server_requests_total", labels) or 0
    user = await _known_user(platform)
    began = time.monotonic()
    for i in range(20):
        token = tokens.foreign_key(tokens.claims(platform.issuer, user), kid=f"random-kid-{i}")
        assert (await api.get(ROUTE, headers={"Authorization": f"Bearer {token}"})).status_code == 401
    elapsed = time.monotonic() - began
    after = REGISTRY.get_sample_value("venta_http_server_requests_total", labels) or 0
    # at most one refetch per interval (the 20 requests take well under one on a quiet machine, several on a busy one)
    allowed = 2 + int(elapsed / JWKS_MIN_REFRESH_S)
    assert after - before <= min(allowed, 10), f"{after - before} JWKS fetches for 20 unknown key ids in {elapsed:.1f}s"
