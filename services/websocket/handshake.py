"""Where a socket's token comes from: `handshake.auth.token`, else `?token=`, else `Authorization: Bearer`.

The order is SPEC's (the mobile client sends the auth payload; browsers that cannot set headers use the query).
A missing or oddly shaped token is refused here, before any key is looked up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from services.kit.auth import TokenRejected, bearer_token
from services.kit.auth.tokens import MAX_TOKEN_BYTES


def token_of(environ: Mapping[str, Any], auth: Any) -> str:
    if isinstance(auth, dict) and auth.get("token") is not None:
        token = auth["token"]
        if not isinstance(token, str) or not token.strip():
            raise TokenRejected("TOKEN_MALFORMED", "handshake auth.token must be a non-empty string")
        return _bounded(token.strip().removeprefix("Bearer ").strip())
    query = parse_qs(str(environ.get("QUERY_STRING", "")), max_num_fields=50)
    if query.get("token"):
        return _bounded(query["token"][0].strip())
    header = environ.get("HTTP_AUTHORIZATION")
    if header:
        return _bounded(bearer_token(str(header)))
    raise TokenRejected("TOKEN_MISSING", "send a token in auth.token, ?token= or an Authorization: Bearer header")


def _bounded(token: str) -> str:
    if not token:
        raise TokenRejected("TOKEN_MISSING", "the token is empty")
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenRejected("TOKEN_MALFORMED", "the token is too long")
    return token
