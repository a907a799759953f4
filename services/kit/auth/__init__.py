"""Who is calling: RS256 JWT verification against a JWKS, and the Clerk subject -> internal user id mapping.

One path for every edge that accepts a token (the HTTP gateway, the Socket.IO gateway) and for both identity
providers (Clerk in production, the local provider of `services.identity`): a token is trusted only if it is RS256,
signed by a key of the configured issuer's JWKS, issued by that issuer, for an allowed authorized party, and within
its validity window.
"""

from services.kit.auth.errors import TokenRejected
from services.kit.auth.jwks import JwksCache
from services.kit.auth.tokens import Claims, TokenVerifier, bearer_token
from services.kit.auth.users import Authenticator, Principal, UserDirectory

__all__ = [
    "Authenticator",
    "Claims",
    "JwksCache",
    "Principal",
    "TokenRejected",
    "TokenVerifier",
    "UserDirectory",
    "bearer_token",
]
