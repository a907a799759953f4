"""The one error of authentication: a token (or its absence) that does not prove who the caller is."""

from __future__ import annotations

from services.kit.errors import Unauthenticated


class TokenRejected(Unauthenticated):
    """`reason` is a stable machine-readable code (TOKEN_EXPIRED, TOKEN_WRONG_ISSUER, ...) for clients and logs."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
