"""From a verified token to the internal user: Clerk subject -> user id, through the user service, cached.

The user service (GetUserByClerkId) is the record; Redis keeps the answer for `ttl_s` (an hour) so that a request
costs one Redis read rather than a gRPC call, and the process keeps it for `local_ttl_s` (seconds) so that a caller's
next requests cost no round trip at all (one of the three Redis round trips of a cached read through the gateway).
When Redis does not answer we ask the user service directly: the cache may make a request slower, never wrong.
A subject without a user (never created, or deleted) is not authenticated; `forget` drops the cached id when the user
is deleted: at once in Redis and in this process, within `local_ttl_s` in the other processes that hold it, the way a
Clerk session token stays valid until it expires (a minute) after its session is revoked.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis.asyncio
from redis.exceptions import RedisError

from services.contracts.venta.user.v1 import user_pb2, user_pb2_grpc
from services.kit.auth.errors import TokenRejected
from services.kit.auth.tokens import Claims, TokenVerifier
from services.kit.grpc.client import PeerClient, RemoteError

log = logging.getLogger("venta.auth")

CACHE_PREFIX = "venta:identity:clerk:"
LOCAL_CACHE_SIZE = 10_000
"""Subjects whose user id the process keeps; past it, the oldest entry leaves first."""


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
        local_ttl_s: float = 0.0,
    ) -> None:
        self.users = users
        self.cache = cache
        self.ttl_s = ttl_s
        self.local_ttl_s = local_ttl_s
        self._local: dict[str, tuple[str, float]] = {}  # subject -> (user id, monotonic deadline)

    async def user_id(self, clerk_id: str) -> str:
        known = self._local.get(clerk_id)
        if known is not None:
            if time.monotonic() < known[1]:
                return known[0]
            del self._local[clerk_id]
        key = CACHE_PREFIX + clerk_id
        try:
            cached = await self.cache.get(key)
        except RedisError as exc:
            log.warning("user id cache unavailable (%s); asking the user service", type(exc).__name__)
            cached = None
        if cached:
            return self._keep(clerk_id, str(cached))
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
        return self._keep(clerk_id, str(user.id))

    def _keep(self, clerk_id: str, user_id: str) -> str:
        if self.local_ttl_s > 0:
            if len(self._local) >= LOCAL_CACHE_SIZE:
                self._local.pop(next(iter(self._local)))  # oldest first: dicts keep insertion order
            self._local[clerk_id] = (user_id, time.monotonic() + self.local_ttl_s)
        return user_id

    async def forget(self, clerk_id: str) -> None:
        self._local.pop(clerk_id, None)
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
