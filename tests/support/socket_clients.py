"""A python-socketio client that records what the server sends, so a test can wait for "the next vendor_sync".

Every event the server emits on the namespace lands in a per-event queue; `next(event)` waits for one with a
timeout, `nothing(event, within)` proves that none arrives. Acknowledged emits return the server's answer.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import socketio

OUT_EVENTS = ("vendor_sync", "vendor_channels", "vendor_disconnect", "notification", "error")


class SocketClient:
    def __init__(
        self, url: str, namespace: str, *, transports: list[str] | None = None, http_session: Any = None
    ) -> None:
        """`http_session`: an aiohttp.ClientSession of the caller's (e.g. one trusting a test CA, for wss://)."""
        self.url = url
        self.namespace = namespace
        self.transports = transports or ["websocket"]
        self.sio = socketio.AsyncClient(reconnection=False, http_session=http_session)
        self.queues: dict[str, asyncio.Queue[Any]] = defaultdict(asyncio.Queue)
        self.disconnected = asyncio.Event()
        for event in OUT_EVENTS:
            self.sio.on(event, self._recorder(event), namespace=namespace)
        self.sio.on("disconnect", self._on_disconnect, namespace=namespace)

    def _recorder(self, event: str) -> Any:
        async def record(data: Any = None) -> None:
            self.queues[event].put_nowait(data)

        return record

    async def _on_disconnect(self, *_: Any) -> None:
        self.disconnected.set()

    async def connect(self, *, auth: Any = None, headers: dict[str, str] | None = None, query: str = "") -> None:
        url = f"{self.url}?{query}" if query else self.url
        await self.sio.connect(
            url,
            namespaces=[self.namespace],
            auth=auth,
            headers=headers or {},
            transports=self.transports,
            wait_timeout=10,
        )

    async def call(self, event: str, data: Any = None, wait_s: float = 10.0) -> Any:
        """Emit and wait for the server's acknowledgement."""
        return await self.sio.call(event, data, namespace=self.namespace, timeout=wait_s)

    async def emit(self, event: str, data: Any = None) -> None:
        await self.sio.emit(event, data, namespace=self.namespace)

    async def next(self, event: str, wait_s: float = 10.0) -> Any:
        return await asyncio.wait_for(self.queues[event].get(), wait_s)

    async def nothing(self, event: str, within: float) -> None:
        try:
            data = await asyncio.wait_for(self.queues[event].get(), within)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected {event}: {data!r}")

    def drain(self, event: str) -> list[Any]:
        items = []
        while not self.queues[event].empty():
            items.append(self.queues[event].get_nowait())
        return items

    @property
    def connected(self) -> bool:
        return bool(self.sio.connected) and self.namespace in self.sio.namespaces

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()
