"""The gateway's Socket.IO server (`SocketServer`, its sockets sending through a `PacketQueue`) and room emit
(`RoomFanOut`) against python-socketio's own: the same deliveries, through real servers.

Each test runs a Socket.IO server on aiohttp, the library's or the gateway's, and real python-socketio clients over
WebSockets, and compares what every client received: who, what, in what order; with a skipped sid, tuple and empty
arguments, an acknowledged emit, and recipients gone under the emit (closed, or silent past the ping timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import socketio
from aiohttp import web

from services.devkit.servers import free_port
from services.websocket.fanout import PacketQueue, RoomFanOut, SocketServer

ROOM = "vendor-1"


@dataclass
class Scene:
    server: socketio.AsyncServer
    clients: list[socketio.AsyncClient]
    received: list[list[tuple[str, tuple[Any, ...]]]] = field(default_factory=list)

    def sid(self, index: int) -> str:
        sid = self.clients[index].get_sid("/")
        assert sid is not None
        return sid

    async def settled(self, count: int, *, among: range | None = None) -> None:
        """Wait until each of the clients (all, or `among`) has received `count` events."""
        indexes = among if among is not None else range(len(self.clients))
        deadline = time.monotonic() + 15  # generous: a busy CI machine
        while time.monotonic() < deadline:
            if all(len(self.received[i]) >= count for i in indexes):
                await asyncio.sleep(0.05)  # and nothing more
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"not every client got {count} events: {[len(self.received[i]) for i in indexes]}")


@contextlib.asynccontextmanager
async def scene(
    server_class: type[socketio.AsyncServer], manager: socketio.AsyncManager, clients: int
) -> AsyncIterator[Scene]:
    server = server_class(async_mode="aiohttp", client_manager=manager)

    @server.event
    async def connect(sid: str, environ: dict[str, Any]) -> None:
        await server.enter_room(sid, ROOM)

    app = web.Application()
    server.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    built = Scene(server, [])
    try:
        for index in range(clients):
            client = socketio.AsyncClient(reconnection=False)
            built.received.append([])
            client.on("*", lambda event, *args, i=index: built.received[i].append((event, args)))
            await client.connect(f"http://127.0.0.1:{port}", transports=["websocket"], wait_timeout=10)
            built.clients.append(client)
        yield built
    finally:
        await asyncio.gather(*(c.disconnect() for c in built.clients))
        await runner.cleanup()


@pytest.fixture(params=["library", "fan-out"])
async def sockets(request: pytest.FixtureRequest) -> AsyncIterator[Scene]:
    library = request.param == "library"
    server_class, manager = (socketio.AsyncServer, socketio.AsyncManager()) if library else (SocketServer, RoomFanOut())
    async with scene(server_class, manager, clients=12) as built:
        yield built


async def test_every_recipient_gets_every_emit_in_order(sockets: Scene) -> None:
    for step in range(20):
        await sockets.server.emit("vendor_sync", {"id": "v", "step": step}, room=ROOM)
    await sockets.server.emit("pair", ("a", 2), room=ROOM)  # a tuple: two arguments
    await sockets.server.emit("bare", None, room=ROOM)  # no argument
    await sockets.settled(22)
    expected = [("vendor_sync", ({"id": "v", "step": step},)) for step in range(20)]
    expected += [("pair", ("a", 2)), ("bare", ())]
    assert all(got == expected for got in sockets.received), sockets.received


async def test_skipped_sids_are_left_out(sockets: Scene) -> None:
    await sockets.server.emit("one", 1, room=ROOM, skip_sid=sockets.sid(0))
    await sockets.server.emit("two", 2, room=ROOM, skip_sid=[sockets.sid(1), sockets.sid(2)])
    await sockets.settled(2, among=range(3, 12))
    assert sockets.received[0] == [("two", (2,))]
    assert sockets.received[1] == sockets.received[2] == [("one", (1,))]
    assert all(got == [("one", (1,)), ("two", (2,))] for got in sockets.received[3:])


async def test_an_emit_to_one_socket_and_an_acknowledged_one(sockets: Scene) -> None:
    await sockets.server.emit("private", "x", to=sockets.sid(5))
    got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    await sockets.server.emit("question", "?", to=sockets.sid(6), callback=lambda *a: got.set_result(a))
    await sockets.settled(1, among=range(5, 7))
    assert await asyncio.wait_for(got, 10) == ()  # the client's acknowledgement came back through the callback
    assert sockets.received[5] == [("private", ("x",))]
    assert sockets.received[6] == [("question", ("?",))]
    assert all(got == [] for i, got in enumerate(sockets.received) if i not in (5, 6))


@pytest.mark.parametrize("fault", ["closed", "silent"])
async def test_recipients_gone_under_the_emit_do_not_stop_the_others(sockets: Scene, fault: str) -> None:
    """Sockets 3 and 7 are gone while still in the room: closed (what `close()` sets first, before the disconnect
    takes it out of the room) or silent (no ping for longer than the timeout: the send closes it). The emit goes on
    to the sockets after them."""
    server = sockets.server
    for gone in (3, 7):
        socket = server.eio.sockets[server.manager.eio_sid_from_sid(sockets.sid(gone), "/")]
        if fault == "closed":
            socket.closed = True
        else:
            socket.last_ping = time.time() - 10 * server.eio.ping_timeout
    await server.emit("after", "still", room=ROOM)
    others = [i for i in range(12) if i not in (3, 7)]
    await sockets.settled(1, among=range(8, 12))
    assert all(sockets.received[i] == [("after", ("still",))] for i in others)
    assert sockets.received[3] == sockets.received[7] == []


async def test_the_gateways_sockets_send_through_a_packet_queue() -> None:
    """What the benchmark's gain rests on (python-socketio builds its Engine.IO server through a private hook)."""
    async with scene(SocketServer, RoomFanOut(), clients=1) as built:
        socket = built.server.eio.sockets[built.server.manager.eio_sid_from_sid(built.sid(0), "/")]
        assert type(socket.queue) is PacketQueue
