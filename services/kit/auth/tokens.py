"""Verifying one bearer token: RS256 only, a key of the issuer's JWKS, issuer, validity window, authorized party.

The algorithm is fixed before any key is looked up, so `alg: none` and HS256 tokens "signed" with the public key are
refused whatever the key set holds. `exp`, `iat`, `iss` and `sub` are required; `nbf` is checked when present (Clerk
sets it); `azp` must be one of the allowed parties when any are configured (Clerk's defence against tokens minted
for another site). Every refusal is a `TokenRejected` whose `reason` says which check failed. A token verified once
is remembered (bounded), so later requests re-check only its validity window.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import exceptions as jwt_errors

from services.kit.auth.errors import TokenRejected
from services.kit.auth.jwks import JwksCache

ALGORITHM = "RS256"
MAX_TOKEN_BYTES = 8192
VERIFIED_CACHE_SIZE = 10_000
"""Tokens whose signature was checked, kept in memory: an RSA verification costs ~0.1 ms, a dict lookup nothing."""
BEARER = "bearer"

_REASONS: tuple[tuple[type[Exception], str, str], ...] = (
    (jwt_errors.ExpiredSignatureError, "TOKEN_EXPIRED", "token has expired"),
    (jwt_errors.ImmatureSignatureError, "TOKEN_NOT_YET_VALID", "token is not valid yet"),
    (jwt_errors.InvalidIssuerError, "TOKEN_WRONG_ISSUER", "token was issued by another issuer"),
    (jwt_errors.InvalidAudienceError, "TOKEN_WRONG_AUDIENCE", "token is meant for another audience"),
    (jwt_errors.MissingRequiredClaimError, "TOKEN_MISSING_CLAIM", "token lacks a required claim"),
    (jwt_errors.InvalidSignatureError, "TOKEN_BAD_SIGNATURE", "token signature does not verify"),
    (jwt_errors.InvalidAlgorithmError, "TOKEN_BAD_ALGORITHM", "token algorithm is not accepted"),
    (jwt_errors.DecodeError, "TOKEN_MALFORMED", "token is malformed"),
)


@dataclass(frozen=True)
class Claims:
    subject: str
    issuer: str
    authorized_party: str | None
    expires_at: int
    session_id: str | None
    raw: Mapping[str, Any]


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; TokenRejected(TOKEN_MISSING) otherwise."""
    if not authorization:
        raise TokenRejected("TOKEN_MISSING", "an Authorization: Bearer token is required")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != BEARER or not token.strip():
        raise TokenRejected("TOKEN_MISSING", "the Authorization header must be 'Bearer <token>'")
    return token.strip()


class TokenVerifier:
    def __init__(
        self,
        keys: JwksCache,
        *,
        issuer: str,
        authorized_parties: Collection[str] = (),
        audience: str | None = None,
        leeway_s: float = 5.0,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.authorized_parties = frozenset(authorized_parties)
        self.audience = audience
        self.leeway_s = leeway_s
        self._verified: dict[str, Claims] = {}

    async def verify(self, token: str) -> Claims:
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenRejected("TOKEN_MALFORMED", "token is too long")
        cached = self._verified.get(token)
        if cached is not None:
            return self._still_valid(cached)
        try:
            header = jwt.get_unverified_header(token)
        except jwt_errors.PyJWTError:
            raise TokenRejected("TOKEN_MALFORMED", "token is malformed") from None
        if header.get("alg") != ALGORITHM:
            raise TokenRejected("TOKEN_BAD_ALGORITHM", f"only {ALGORITHM} tokens are accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("UNKNOWN_KEY", "token names no signing key (kid)")
        key = await self.keys.get(kid)
        claims = self._checked(self._decode(token, key.key))
        self._remember(token, claims)
        return claims

    def _still_valid(self, claims: Claims) -> Claims:
        """A token verified before: its signature, issuer and party cannot have changed; its time window can."""
        now = time.time()
        if now > claims.expires_at + self.leeway_s:
            raise TokenRejected("TOKEN_EXPIRED", "token has expired")
        not_before = claims.raw.get("nbf")
        if isinstance(not_before, (int, float)) and now < not_before - self.leeway_s:
            raise TokenRejected("TOKEN_NOT_YET_VALID", "token is not valid yet")
        return claims

    def _remember(self, token: str, claims: Claims) -> None:
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)))  # oldest first: dicts keep insertion order
        self._verified[token] = claims

    def _decode(self, token: str, key: Any) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway_s,
                options={"require": ["exp", "iat", "iss", "sub"], "verify_aud": self.audience is not None},
            )
        except jwt_errors.PyJWTError as exc:
            for kind, reason, message in _REASONS:
                if isinstance(exc, kind):
                    raise TokenRejected(reason, message) from None
            raise TokenRejected("TOKEN_INVALID", "token is not valid") from None

    def _checked(self, claims: dict[str, Any]) -> Claims:
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise TokenRejected("TOKEN_MISSING_CLAIM", "token has no subject")
        azp = claims.get("azp")
        if self.authorized_parties and azp not in self.authorized_parties:
            raise TokenRejected("TOKEN_WRONG_PARTY", "token was issued for another authorized party (azp)")
        session = claims.get("sid")
        return Claims(
            subject=subject,
            issuer=str(claims["iss"]),
            authorized_party=azp if isinstance(azp, str) else None,
            expires_at=int(claims["exp"]),
            session_id=session if isinstance(session, str) else None,
            raw=claims,
        )
