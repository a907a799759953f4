"""A room emit that hands the packet to each recipient's queue in one loop, instead of a task per recipient.

python-socketio's manager sends a room's packet (encoded once) by starting an asyncio task per recipient and waiting
for them all. Each of those tasks only puts the packet on the recipient's Engine.IO queue, which never waits (the
queue has no bound; the socket's own writer task writes it out): for a vendor watched by 1,000 users each move cost
1,000 task creations, 1,000 scheduling rounds and `asyncio.wait`'s callbacks before the first writer could run, and
the last watcher heard of it up to twice as late as needed (bench/README.md, "Fan-out: one loop per room emit").

`RoomFanOut` puts the packets in one loop through Engine.IO's public `send_packet`. What each recipient gets, and in
what order, is unchanged; a recipient whose socket closed meanwhile, or whose pings stopped, is skipped by Engine.IO
itself, as before, and an error sending to one recipient does not stop the others (as it did not stop the others'
tasks). Emits with a callback (an id per recipient) keep the library's path. It sits under the Redis manager, so an
emit from any replica, received from Redis, is sent this way too.
"""

from __future__ import annotations

from typing import Any

import engineio.exceptions
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
            if sid in skip:
                continue
            for packet in packets:
                try:
                    await send(eio_sid, packet)
                except engineio.exceptions.EngineIOError:
                    break  # its socket is closing: its disconnect takes it out of the room


class FanOutRedisManager(socketio.AsyncRedisManager, RoomFanOut):  # type: ignore[misc]
    """python-socketio's Redis manager (emits reach every replica) whose local sends are `RoomFanOut`'s."""
