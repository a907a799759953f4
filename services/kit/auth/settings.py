"""The settings of every edge that accepts a token (the HTTP gateway, the Socket.IO gateway), declared once.

Defaults are those of local mode: the local identity provider on :5010 is the issuer and `venta-local` the one
authorized party. `build_authenticator` turns them into the kit's one verification path, so both edges check a
token the same way and cache the same subject -> user id answers.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
import redis.asyncio
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.kit.auth.jwks import JwksCache
from services.kit.auth.tokens import TokenVerifier
from services.kit.auth.users import Authenticator, UserDirectory
from services.kit.grpc.client import PeerClient


def comma_list(value: Any) -> Any:
    """Comma-separated or JSON list; an empty string is an empty list (how list settings arrive in env vars)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class AuthSettings(BaseSettings):
    """How an edge checks a bearer token: the issuer, its keys, the parties allowed, and the user id cache."""

    model_config = SettingsConfigDict(env_prefix="VENTA_", extra="ignore", frozen=True)

    auth_issuer: str = Field(
        default="http://127.0.0.1:5010",
        description="The `iss` every token must carry: the local identity provider, or "
        "`https://<your>.clerk.accounts.dev` in production.",
    )
    auth_jwks_url: str | None = Field(
        default=None,
        description="Where the issuer's public keys are; unset means `<issuer>/.well-known/jwks.json`.",
    )
    auth_authorized_parties: Annotated[list[str], NoDecode] = Field(
        default=["venta-local"],
        description="The `azp` values accepted (comma-separated): your front-end origins with Clerk, `venta-local` "
        "with the local identity provider.",
    )
    auth_audience: str | None = Field(
        default=None, description="The `aud` tokens must carry; unset, the audience is not checked."
    )
    auth_leeway_s: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="Seconds of clock skew tolerated when checking `exp` and `nbf`.",
    )
    jwks_max_age_s: float = Field(
        default=300.0, gt=0, description="Seconds the issuer's key set is cached before it is fetched again."
    )
    jwks_min_refresh_interval_s: float = Field(
        default=10.0,
        ge=0,
        description="Least seconds between two fetches of the key set when a token names an unknown key (rotation).",
    )
    user_cache_ttl_s: int = Field(
        default=3600,
        ge=1,
        description="Seconds a token subject's internal user id stays cached in Redis (a Clerk `user.deleted` "
        "webhook drops it at once).",
    )
    user_local_ttl_s: float = Field(
        default=10.0,
        ge=0,
        le=60,
        description="Seconds each process also keeps a subject's user id, so that a caller's next requests cost no "
        "Redis round trip; 0 turns it off. A Clerk `user.deleted` webhook drops it at once in the gateway that "
        "receives it; other processes (gateway replicas, the Socket.IO gateway, notifications) forget it within this "
        "time, as a revoked Clerk session's token stays valid until it expires (a minute).",
    )

    @field_validator("auth_authorized_parties", mode="before")
    @classmethod
    def _parties(cls, value: Any) -> Any:
        return comma_list(value)

    @property
    def jwks_url(self) -> str:
        return self.auth_jwks_url or f"{self.auth_issuer.rstrip('/')}/.well-known/jwks.json"


def build_authenticator(
    settings: AuthSettings,
    *,
    http: httpx.AsyncClient,
    users: PeerClient[Any],
    cache: redis.asyncio.Redis,
) -> tuple[Authenticator, JwksCache]:
    """The authenticator of an edge and its key set (whose `ensure_loaded` is a readiness check)."""
    jwks = JwksCache(
        settings.jwks_url,
        http=http,
        max_age_s=settings.jwks_max_age_s,
        min_refresh_interval_s=settings.jwks_min_refresh_interval_s,
    )
    verifier = TokenVerifier(
        jwks,
        issuer=settings.auth_issuer,
        authorized_parties=settings.auth_authorized_parties,
        audience=settings.auth_audience,
        leeway_s=settings.auth_leeway_s,
    )
    return Authenticator(
        verifier, UserDirectory(users, cache, ttl_s=settings.user_cache_ttl_s, local_ttl_s=settings.user_local_ttl_s)
    ), jwks
