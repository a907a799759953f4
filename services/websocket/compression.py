"""Whether the gateway's WebSockets deflate their messages (`per_message_deflate`, off by default).

engine.io's aiohttp driver makes each WebSocket with aiohttp's defaults, which accept the permessage-deflate a client
offers (socket.io-client offers it): every frame is then compressed on its own, one zlib call per delivery, for
messages of ~150 bytes, with a compressor of ~120 KiB per socket. The Socket.IO server has left it off by default
since engine.io 4. With it off, the offer is taken out of the upgrade request before the WebSocket answers it; the
client goes on uncompressed, as the WebSocket protocol lets any server do (RFC 7692: an extension the server does not
accept is not used).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def decline_per_message_deflate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if hdrs.SEC_WEBSOCKET_EXTENSIONS not in request.headers:
        return await handler(request)
    headers = request.headers.copy()
    del headers[hdrs.SEC_WEBSOCKET_EXTENSIONS]
    return await handler(request.clone(headers=headers))
