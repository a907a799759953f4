"""`venta watch` and `venta move`: the live map from a terminal, through the Socket.IO gateway like the mobile app.

`watch` connects to `/user` with a token, sends a viewport and prints every `vendor_channels`, `vendor_sync`,
`vendor_disconnect` and `error` as it arrives; it re-sends the viewport every 20 s (under the 15/min limit) so
vendors that drive in show up. `move` connects to `/vendor` as a vendor's owner and walks it, one update every
2 s (under the 30/min limit).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from typing import Any

RESEND_VIEWPORT_S = 20.0
MOVE_EVERY_S = 2.0


def _print(event: str, data: Any) -> None:
    print(f"{time.strftime('%H:%M:%S')} {event:<17} {json.dumps(data)}", flush=True)


def _numbers(text: str, count: int, shape: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected {shape} (numbers, comma-separated), got {text!r}")
    for lat in values[0::2]:
        if not -90 <= lat <= 90:
            raise argparse.ArgumentTypeError(f"latitude {lat} is not between -90 and 90")
    for long in values[1::2]:
        if not -180 <= long <= 180:
            raise argparse.ArgumentTypeError(f"longitude {long} is not between -180 and 180")
    return values


def parse_box(text: str) -> dict[str, dict[str, float]]:
    """`S,W,N,E` -> the `updateUserLocation` payload."""
    south, west, north, east = _numbers(text, 4, "S,W,N,E")
    if south > north:
        raise argparse.ArgumentTypeError("south must not be north of north")
    return {"swLocation": {"lat": south, "long": west}, "neLocation": {"lat": north, "long": east}}


def parse_point(text: str) -> tuple[float, float]:
    """`LAT,LONG`."""
    lat, long = _numbers(text, 2, "LAT,LONG")
    return lat, long


async def watch(url: str, token: str, viewport: dict[str, dict[str, float]], *, seconds: float | None) -> None:
    import socketio  # only when watching: the CLI's other commands do not pay for it

    client = socketio.AsyncClient(reconnection=True)
    for event in ("vendor_channels", "vendor_sync", "vendor_disconnect", "error"):
        client.on(event, lambda data=None, name=event: _print(name, data), namespace="/user")

    async def on_connect() -> None:
        _print("connected", {"url": url})
        await client.emit("updateUserLocation", viewport, namespace="/user")

    client.on("connect", on_connect, namespace="/user")
    client.on("disconnect", lambda *_: _print("disconnected", {}), namespace="/user")
    await client.connect(url, namespaces=["/user"], transports=["websocket"], auth={"token": token})
    deadline = None if seconds is None else time.monotonic() + seconds
    try:
        while deadline is None or time.monotonic() < deadline:
            await asyncio.sleep(RESEND_VIEWPORT_S if deadline is None else min(RESEND_VIEWPORT_S, seconds or 0))
            if client.connected:
                await client.emit("updateUserLocation", viewport, namespace="/user")
    finally:
        await client.disconnect()


async def move(url: str, token: str, vendor_id: str, start: tuple[float, float], *, steps: int) -> None:
    import socketio

    client = socketio.AsyncClient(reconnection=False)
    client.on("error", lambda data=None: _print("error", data), namespace="/vendor")
    await client.connect(url, namespaces=["/vendor"], transports=["websocket"], auth={"token": token})
    try:
        _print("register-vendor", await client.call("register-vendor", {"vendorId": vendor_id}, namespace="/vendor"))
        lat, long = start
        for step in range(steps):
            update = {"vendorId": vendor_id, "lat": round(lat + step * 0.0005, 6), "long": long}
            _print("updateVendorLocation", await client.call("updateVendorLocation", update, namespace="/vendor"))
            if step + 1 < steps:
                await asyncio.sleep(MOVE_EVERY_S)
    finally:
        await client.disconnect()
