"""The local identity provider's HTTP API: JWKS, token minting (`venta token`), key rotation, probes.

It plays Clerk's part in local mode and in tests, so the gateway verifies tokens exactly as in production: it only
knows an issuer URL and fetches `/.well-known/jwks.json`. Minting a token also makes sure the user exists
(HandleClerkUserCreated, idempotent), as Clerk's `user.created` webhook would, so the token is usable at once.
Minting and rotation require `VENTA_IDENTITY_ADMIN_TOKEN` when it is set (in a cluster it must be:
`VENTA_IDENTITY_REQUIRE_ADMIN_TOKEN`, set by the operator); the provider binds to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from services.contracts.venta.user.v1 import user_pb2, user_pb2_grpc
from services.identity.config import IdentitySettings
from services.identity.keys import KeyRing
from services.kit.grpc.client import PeerClient, make_breaker
from services.kit.grpc.probe import peer_health
from services.kit.grpc.tls import GrpcTls
from services.kit.http.envelope import ApiError, ErrorEnvelope, ErrorType
from services.kit.http.handlers import install_error_handlers, render_error
from services.kit.http.middleware import RequestContextMiddleware
from services.kit.http.server import AsgiServiceHost
from services.kit.probes import health_router
from services.kit.telemetry import fastapi_telemetry

USER_SERVICE = user_pb2.DESCRIPTOR.services_by_name["UserService"].full_name


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class TokenRequest(CamelModel):
    user: str = Field(pattern=r"^[A-Za-z0-9_-]{1,128}$", description="the Clerk-style user id (token subject)")
    ttl_seconds: int | None = Field(default=None, ge=10, le=7 * 86_400)


class MintedToken(CamelModel):
    token: str
    user: str
    expires_at: int
    kid: str


class Rotated(CamelModel):
    kid: str
    published: list[str]


async def _admin(request: Request) -> None:
    expected = request.app.state.settings.identity_admin_token
    if expected is None:
        return
    presented = request.headers.get("authorization", "").encode()
    if not hmac.compare_digest(presented, f"Bearer {expected.get_secret_value()}".encode()):
        raise ApiError(ErrorType.AUTHENTICATION, "ADMIN_TOKEN_INVALID", "minting requires the admin token")


Admin = Depends(_admin)
ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorEnvelope} for s in (400, 401, 409, 500, 502)}


def create_app(settings: IdentitySettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        users = PeerClient(
            target_name="users",
            address=settings.users_addr,
            stub=user_pb2_grpc.UserServiceStub,
            timeout_s=settings.grpc_timeout_s,
            breaker=make_breaker(
                "identity->users",
                fail_max=settings.breaker_fail_max,
                reset_timeout_s=settings.breaker_reset_timeout_s,
            ),
            tls=GrpcTls.from_settings(settings),
        )
        app.state.users = users
        try:
            yield
        finally:
            await users.close()

    app = FastAPI(
        title="Venta local identity provider",
        version="1.0.0",
        lifespan=lifespan,
        redoc_url=None,
        telemetry=fastapi_telemetry(),
    )
    app.state.settings = settings
    app.state.keys = KeyRing(settings.identity_key_dir, retired=settings.identity_retired_keys)
    app.state.draining = False
    install_error_handlers(app)
    app.include_router(
        health_router(settings.service_name, lambda r: {"users": peer_health(r.app.state.users, USER_SERVICE)})
    )

    @app.get("/.well-known/jwks.json", tags=["keys"])
    async def jwks(request: Request) -> dict[str, Any]:
        keys: KeyRing = request.app.state.keys
        return keys.jwks()

    @app.get("/.well-known/openid-configuration", tags=["keys"])
    async def discovery() -> dict[str, Any]:
        return {
            "issuer": settings.issuer,
            "jwks_uri": f"{settings.issuer}/.well-known/jwks.json",
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    @app.post("/v1/tokens", tags=["tokens"], dependencies=[Admin], responses=ERRORS)
    async def mint(body: TokenRequest, request: Request) -> MintedToken:
        users: PeerClient[user_pb2_grpc.UserServiceAsyncStub] = request.app.state.users
        await users.unary(users.stub.HandleClerkUserCreated, user_pb2.ClerkUserData(id=body.user))
        now = int(time.time())
        expires = now + (body.ttl_seconds or settings.identity_token_ttl_s)
        keys: KeyRing = request.app.state.keys
        claims = {
            "iss": settings.issuer,
            "sub": body.user,
            "azp": settings.identity_authorized_party,
            "iat": now,
            "nbf": now,
            "exp": expires,
            "sid": f"sess_{uuid.uuid4().hex}",
            "jti": uuid.uuid4().hex,
        }
        return MintedToken(token=keys.sign(claims), user=body.user, expires_at=expires, kid=keys.current.kid)

    @app.post("/v1/keys/rotate", tags=["keys"], dependencies=[Admin], responses=ERRORS)
    async def rotate(request: Request) -> Rotated:
        keys: KeyRing = request.app.state.keys
        if not keys.rotatable:
            raise ApiError(
                ErrorType.CONFLICT,
                "KEYS_READ_ONLY",
                "the signing keys come from a read-only directory "
                "(in a cluster, the platform's identity-keys Secret): replace the key there and restart",
            )
        key = await asyncio.to_thread(keys.rotate)
        return Rotated(kid=key.kid, published=[k.kid for k in keys.keys])

    app.add_middleware(RequestContextMiddleware, service=settings.service_name, on_error=render_error)
    return app


def build(settings: IdentitySettings) -> AsgiServiceHost:
    """What `venta serve identity` runs."""
    return AsgiServiceHost.from_settings(settings, create_app(settings))
