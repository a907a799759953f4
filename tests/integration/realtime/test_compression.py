"""permessage-deflate on the gateway's WebSockets: declined by default (as the Socket.IO server declines it since
engine.io 4), accepted with `per_message_deflate`; either way the socket works, and a malformed offer breaks nothing.

Each client below offers the extension as socket.io-client does (`Sec-WebSocket-Extensions: permessage-deflate`),
over a raw WebSocket, and then speaks Socket.IO over it: the engine.io open packet, a namespace connect with a token,
and the connect's acknowledgement.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.support.platform_hosts import WebsocketHost
from tests.support.realtime import Realtime


async def handshake(url: str, token: str, *, offer: str | None = None) -> tuple[int, str]:
    """The extension's window bits the gateway took (0: none) and its answer to a `/user` connect over the socket.

    Without `offer`, aiohttp's client offers the extension itself (and inflates what comes back); with one, that
    header is sent as it is, and a server that took it would send frames this client cannot read."""
    headers = {"Sec-WebSocket-Extensions": offer} if offer is not None else {}
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            f"{url}/socket.io/?EIO=4&transport=websocket", headers=headers, compress=0 if offer is not None else 15
        ) as ws,
    ):
        opened = await ws.receive_str(timeout=10)
        assert opened.startswith("0{"), opened  # engine.io's open packet
        await ws.send_str("40/user," + json.dumps({"token": token}))
        answer = await ws.receive_str(timeout=10)
        return ws.compress, answer


@pytest.fixture
async def deflating(realtime: Realtime) -> AsyncIterator[WebsocketHost]:
    settings = realtime.websocket.settings.model_copy(update={"per_message_deflate": True})
    host = await realtime.hosts.start_websocket(settings)
    try:
        yield host
    finally:
        await host.stop()


async def test_the_offer_is_declined_by_default_and_the_socket_works(realtime: Realtime) -> None:
    account = await realtime.account()
    negotiated, answer = await handshake(realtime.url, account.token)
    assert negotiated == 0
    assert answer.startswith("40/user,{") and '"sid"' in answer, answer


async def test_the_offer_is_taken_when_enabled(realtime: Realtime, deflating: WebsocketHost) -> None:
    account = await realtime.account()
    negotiated, answer = await handshake(deflating.url, account.token)
    assert negotiated == 15
    assert answer.startswith("40/user,{") and '"sid"' in answer, answer


@pytest.mark.parametrize(
    "offer",
    [
        "permessage-deflate; server_max_window_bits=99",
        "permessage-deflate; client_max_window_bits=abc; unknown-parameter",
        "x-unknown-extension, ;;;,",
        "\u00e9\u00e9",
        "",
    ],
)
async def test_malformed_offers_leave_the_socket_uncompressed_and_working(
    realtime: Realtime, deflating: WebsocketHost, offer: str
) -> None:
    account = await realtime.account()
    for url in (realtime.url, deflating.url):
        negotiated, answer = await handshake(url, account.token, offer=offer)
        assert negotiated == 0, (url, offer)
        assert answer.startswith("40/user,{"), (url, offer, answer)
