"""The cached-read path: `GET /v1/vendors/{id}` (and its alias) answered from the read cache before routing.

The busiest request of the API is a vendor page the cache already holds. Through the app it costs routing, six
dependencies and two Redis round trips (the rate-limit hit, the lookup); here it costs one Redis command that counts
the hit and reads the entry (`VendorCache.count_and_get`), the caller's authentication (the kit's one sequence,
verified tokens and user ids kept in the process) and the answer. What it answers is what the route answers: the
same body, headers and status, the same metrics and span names (the route template), inside the same request
context, security headers and CORS. It sits outside the compression, which costs every answer it wraps (~6 us in a
loop, ~15 us a request under load) and changes none smaller than its threshold: an entry that large goes on to the
app, which compresses it.

Anything else goes on to the app, with what was learnt on the way left in the request's state so that nothing is
done twice: the counted hit (`ratelimit.COUNTED`, which the `rate_limit` dependency then decides on: a refusal is the
app's 429) and the lookup (`cache.LOOKED_UP`, so the route answers with the entry found, or fetches a missed vendor,
without a second lookup). That covers a miss, an entry to compress, a refused hit, a missing or bad token (the app's
401), a strategy other than the fixed window (not a plain counter), a disabled cache, and ids not in canonical form.
Like Django's cache middleware, but after the gateway's checks.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from services.gateway.cache import LOOKED_UP
from services.gateway.ratelimit import COUNTED, client_key
from services.gateway.resources import Resources
from services.kit.auth import bearer_token
from services.kit.http.middleware import header

# path prefix -> route template (the route's `path_format`, which labels metrics and names spans)
ROUTES = {"/v1/vendors/": "/v1/vendors/{id}", "/vendor/": "/vendor/{id}"}
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class RouteTemplate:
    """What `scope["route"]` says of a request answered here: its template, as the matched route's would."""

    def __init__(self, path_format: str) -> None:
        self.path = self.path_format = path_format


class CachedVendorReads:
    """Under the request context, security headers and CORS, like the routes; above the compression, which takes
    over answers of `compress_from` bytes and more (the app's `GZipMiddleware`'s `minimum_size`)."""

    def __init__(self, app: ASGIApp, *, compress_from: int) -> None:
        self.app = app
        self.compress_from = compress_from
        self.routes = {prefix: RouteTemplate(template) for prefix, template in ROUTES.items()}

    def _vendor_id(self, scope: Scope) -> tuple[str, RouteTemplate] | None:
        if scope["type"] != "http" or scope["method"] != "GET":
            return None
        path: str = scope["path"]
        for prefix, route in self.routes.items():
            if path.startswith(prefix) and _CANONICAL_UUID.fullmatch(path, len(prefix)):
                return path[len(prefix) :], route
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = self._vendor_id(scope)
        resources: Resources | None = getattr(scope["app"].state, "resources", None) if target else None
        if target is None or resources is None or not resources.vendor_cache.enabled:
            await self.app(scope, receive, send)
            return
        vendor_id, route = target
        hit = resources.rate_limiter.counter(route.path_format, client_key(scope))
        if hit is None:
            await self.app(scope, receive, send)
            return
        lookup = await resources.vendor_cache.count_and_get(vendor_id, hit)
        state = scope.setdefault("state", {})
        state[COUNTED] = (route.path_format, lookup.count)
        # a miss (or Redis failed: generation "?", nothing will be stored), or a body for the route to answer with
        state[LOOKED_UP] = (vendor_id, lookup.body, lookup.generation)
        if (
            lookup.body is None
            or len(lookup.body) >= self.compress_from
            or lookup.count is None
            or lookup.count > hit.limit
        ):
            await self.app(scope, receive, send)
            return
        try:
            token = bearer_token(header(scope, b"authorization"))
            await resources.authenticator.authenticate(token)
        except Exception:  # noqa: BLE001 - the app authenticates again and answers with the error it is
            await self.app(scope, receive, send)
            return
        scope["route"] = route  # the template the request middleware labels metrics and names the span by
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(lookup.body)).encode()),
                    (b"content-type", b"application/json"),
                    (b"x-ratelimit-limit", str(hit.limit).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": lookup.body})
