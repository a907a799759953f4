"""One router module per resource; each route is declared once and registered under /v1 and its original alias.

The unversioned paths of the system we replace (`/vendor/{id}`, `/user/vendors`, `/upload/image`,
`/webhook/clerk`, `/webhook/subscription`) stay as deprecated aliases of the /v1 routes, so the existing mobile
client keeps working unchanged while new clients see only /v1 in the documentation's first place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter

from services.kit.http.envelope import ErrorEnvelope

F = TypeVar("F", bound=Callable[..., Any])

_DESCRIPTIONS = {
    400: "Invalid request (the envelope's details name the fields)",
    401: "Missing, invalid or expired token, or bad webhook signature",
    403: "Not allowed (only a vendor's owner may change it)",
    404: "Not found",
    409: "Conflict",
    413: "Body too large",
    415: "Not an accepted image type",
    429: "Rate limit exceeded (see Retry-After)",
    500: "Internal error",
    502: "A downstream service is failing or its circuit breaker is open",
}
COMMON = (400, 401, 429, 500, 502)


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses (plus the ones every route can give), all in the envelope."""
    return {
        status: {"model": ErrorEnvelope, "description": _DESCRIPTIONS[status]}
        for status in sorted({*COMMON, *statuses})
    }


def route(router: APIRouter, method: str, path: str, *, alias: str | None = None, **options: Any) -> Callable[[F], F]:
    """Register the decorated endpoint at `path`, and at `alias` (deprecated) when given."""

    def register(endpoint: F) -> F:
        router.add_api_route(path, endpoint, methods=[method], **options)
        if alias is not None:
            router.add_api_route(alias, endpoint, methods=[method], deprecated=True, **options)
        return endpoint

    return register
