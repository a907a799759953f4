"""The signing keys of one issuer, fetched from its JWKS URL over HTTP and kept in memory.

Keys are refetched when they are older than `max_age_s`, and at once when a token names a key id we do not hold
(the issuer rotated its keys) -- but never more often than every `min_refresh_interval_s`, so a stream of tokens
with made-up key ids cannot turn into a stream of requests to the issuer. When a refetch fails we keep the keys we
have; only when we have none is the failure the caller's (Unavailable: a retry may succeed).
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
from jwt import PyJWK, PyJWKSet
from jwt.exceptions import PyJWKSetError, PyJWTError

from services.kit.auth.errors import TokenRejected
from services.kit.errors import Unavailable

log = logging.getLogger("venta.auth")


class JwksCache:
    def __init__(
        self,
        url: str,
        *,
        http: httpx.AsyncClient,
        max_age_s: float = 300.0,
        min_refresh_interval_s: float = 10.0,
        timeout_s: float = 3.0,
    ) -> None:
        self.url = url
        self.http = http
        self.max_age_s = max_age_s
        self.min_refresh_interval_s = min_refresh_interval_s
        self.timeout_s = timeout_s
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> PyJWK:
        """The RSA signing key `kid`; TokenRejected(UNKNOWN_KEY) if the issuer does not publish it."""
        now = time.monotonic()
        if self._fetched_at is None or now - self._fetched_at > self.max_age_s:
            await self._refresh(now)
        key = self._keys.get(kid)
        if key is None:
            await self._refresh(now)
            key = self._keys.get(kid)
        if key is None:
            raise TokenRejected("UNKNOWN_KEY", "token is signed with a key the issuer does not publish")
        return key

    async def ensure_loaded(self) -> None:
        """Readiness: succeed when keys are held or can be fetched now."""
        if not self._keys:
            await self._refresh(time.monotonic(), rate_limited=False)
        if not self._keys:
            raise Unavailable("no signing keys from the identity provider")

    async def _refresh(self, now: float, *, rate_limited: bool = True) -> None:
        async with self._lock:
            if self._attempted_at is not None and self._attempted_at >= now:
                return  # another caller refreshed while we waited for the lock
            recent = self._attempted_at is not None and (
                time.monotonic() - self._attempted_at < self.min_refresh_interval_s
            )
            if rate_limited and recent:
                if not self._keys:
                    raise Unavailable("identity provider keys are unavailable (retrying shortly)")
                return
            self._attempted_at = time.monotonic()
            try:
                response = await self.http.get(self.url, timeout=self.timeout_s)
                response.raise_for_status()
                keys = PyJWKSet.from_dict(response.json())
            except (httpx.HTTPError, ValueError, PyJWKSetError, PyJWTError) as exc:
                if self._keys:
                    log.warning("JWKS refresh from %s failed (%s); keeping %d keys", self.url, exc, len(self._keys))
                    return
                raise Unavailable("identity provider keys are unavailable") from exc
            usable = {
                key.key_id: key
                for key in keys
                if key.key_id and key.key_type == "RSA" and key.public_key_use in (None, "sig")
            }
            if usable.keys() != self._keys.keys():
                log.info("JWKS from %s: keys %s", self.url, sorted(usable), extra={"jwks_keys": sorted(usable)})
            self._keys = usable
            self._fetched_at = time.monotonic()
