"""A room emit that hands the packet to each recipient's queue in one loop, instead of a task per recipient.

python-socketio's manager sends a room's packet (encoded once) by starting an asyncio task per recipient and waiting
for them all. Each of those tasks only puts the packet on the recipient's Engine.IO queue, which never waits (the
queue has no bound; the socket's own writer task writes it out): for a vendor watched by 1,000 users each move cost
1,000 task creations, 1,000 scheduling rounds and `asyncio.wait`'s callbacks before the first writer could run
(measured in bench/README.md, "Fan-out: one loop per room emit, and a queue the writer can wait on without a task").

`RoomFanOut` puts the packets in one loop through Engine.IO's public `send_packet`. What each recipient gets, and in
what order, is unchanged, and no recipient stops the loop: Engine.IO's `send_packet` skips a socket that closed
meanwhile, and closes one whose pings stopped, running its disconnect handlers (and logging their errors) before the
loop goes on, where the tasks ran them side by side. Emits with a callback (an id per recipient) keep the library's
path. It sits under the Redis manager, so an emit from any replica, received from Redis, is sent this way too.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import engineio
import engineio.packet
import socketio
import socketio.packet


class RoomFanOut(socketio.AsyncManager):  # type: ignore[misc]
    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: str | None = None,
        skip_sid: str | list[str] | None = None,
        callback: Any = None,
        to: str | None = None,
        **kwargs: Any,
    ) -> None:
        if callback is not None:
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, to=to, **kwargs)
            return
        room = to or room
        if namespace not in self.rooms:
            return
        # the library's argument rules: a tuple is several arguments, anything else one
        args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        skip = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
        encoded = self.server.packet_class(socketio.packet.EVENT, namespace=namespace, data=[event, *args]).encode()
        packets = [
            engineio.packet.Packet(engineio.packet.MESSAGE, part)
            for part in (encoded if isinstance(encoded, list) else [encoded])
        ]
        send = self.server.eio.send_packet
        for sid, eio_sid in self.get_participants(namespace, room):  # a copy: safe to send while it changes
            if sid not in skip:
                for packet in packets:
                    await send(eio_sid, packet)


class FanOutRedisManager(socketio.AsyncRedisManager, RoomFanOut):  # type: ignore[misc]
    """python-socketio's Redis manager (emits reach every replica) whose local sends are `RoomFanOut`'s."""


class PacketQueue(asyncio.Queue[Any]):
    """An Engine.IO socket's outgoing queue whose `get()` is a future rather than a coroutine.

    Every socket's writer task waits for its next packet with `asyncio.wait_for(queue.get(), ...)`. On Python 3.11
    `wait_for` wraps a coroutine in a task of its own, so each delivery started and scheduled one more task (27% of
    the gateway's samples during a fan-out; bench/README.md); a future it awaits as it is. A packet put while a
    `get()` waits goes straight to that future (through `_put`, asyncio's hook for queue variants, so `task_done`
    and `join` count it as usual); a `get()` that timed out or was cancelled is skipped. Unlike asyncio's `get()`, a
    packet already handed to a waiting writer goes with it if that writer is cancelled before it runs: Engine.IO ends
    a writer by putting `None` on its queue, so that only happens when the whole server is cancelled. Unbounded
    queues only, as Engine.IO creates them.
    """

    def _init(self, maxsize: int) -> None:
        super()._init(maxsize)
        self._waiting: deque[asyncio.Future[Any]] = deque()

    def get(self) -> asyncio.Future[Any]:  # type: ignore[override]
        future = asyncio.get_running_loop().create_future()
        if self.empty():
            self._waiting.append(future)
        else:
            future.set_result(self.get_nowait())
        return future

    def _put(self, item: Any) -> None:
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_result(item)
                return
        super()._put(item)  # type: ignore[misc]


class EngineIOServer(engineio.AsyncServer):  # type: ignore[misc]
    def create_queue(self, *args: Any, **kwargs: Any) -> PacketQueue:
        return PacketQueue(*args, **kwargs)


class SocketServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server over `EngineIOServer`, whose sockets send through a `PacketQueue`."""

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return EngineIOServer
