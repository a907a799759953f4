"""From a verified token to the internal user: Clerk subject -> user id, through the user service, cached.

The user service (GetUserByClerkId) is the record; Redis keeps the answer for `ttl_s` (an hour) so that a request
costs one Redis read rather than a gRPC call. When Redis does not answer we ask the user service directly: the cache
may make a request slower, never wrong. A subject without a user (never created, or deleted) is not authenticated;
`forget` drops the cached id when the user is deleted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis.asyncio
from redis.exceptions import RedisError

from services.contracts.venta.user.v1 import user_pb2, user_pb2_grpc
from services.kit.auth.errors import TokenRejected
from services.kit.auth.tokens import Claims, TokenVerifier
from services.kit.grpc.client import PeerClient, RemoteError

log = logging.getLogger("venta.auth")

CACHE_PREFIX = "venta:identity:clerk:"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: the internal user id and the identity provider's subject."""

    user_id: str
    clerk_id: str
    claims: Claims


class UserDirectory:
    def __init__(
        self,
        users: PeerClient[user_pb2_grpc.UserServiceAsyncStub],
        cache: redis.asyncio.Redis,
        *,
        ttl_s: int = 3600,
    ) -> None:
        self.users = users
        self.cache = cache
        self.ttl_s = ttl_s

    async def user_id(self, clerk_id: str) -> str:
        key = CACHE_PREFIX + clerk_id
        try:
            cached = await self.cache.get(key)
        except RedisError as exc:
            log.warning("user id cache unavailable (%s); asking the user service", type(exc).__name__)
            cached = None
        if cached:
            return str(cached)
        try:
            user = await self.users.unary(
                self.users.stub.GetUserByClerkId, user_pb2.GetUserByClerkIdRequest(clerk_id=clerk_id)
            )
        except RemoteError as exc:
            raise TokenRejected("USER_NOT_FOUND", "no user exists for this token's subject") from exc
        try:
            await self.cache.set(key, user.id, ex=self.ttl_s)
        except RedisError:
            pass
        return str(user.id)

    async def forget(self, clerk_id: str) -> None:
        try:
            await self.cache.delete(CACHE_PREFIX + clerk_id)
        except RedisError as exc:
            log.warning("could not drop the cached id of %s (%s); it expires within the hour", clerk_id, exc)


class Authenticator:
    """Token -> Principal: the one sequence every edge runs."""

    def __init__(self, verifier: TokenVerifier, directory: UserDirectory) -> None:
        self.verifier = verifier
        self.directory = directory

    async def authenticate(self, token: str) -> Principal:
        claims = await self.verifier.verify(token)
        user_id = await self.directory.user_id(claims.subject)
        return Principal(user_id=user_id, clerk_id=claims.subject, claims=claims)
