"""`venta watch` and `venta move`, the terminal client the README shows, as real processes against the gateway."""

from __future__ import annotations

import asyncio
import json
import sys

from tests.support.realtime import Realtime, unique_area


async def venta(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )


async def test_watch_a_vendor_move_from_the_terminal(realtime: Realtime) -> None:
    owner, watcher = await realtime.account(), await realtime.account()
    vendor_id = await realtime.vendor(owner)
    lat, long = unique_area()
    walking = await venta(
        "move",
        "--url",
        realtime.url,
        "--token",
        owner.token,
        "--vendor",
        vendor_id,
        f"--at={lat},{long}",
        "--steps",
        "4",
    )  # 4 updates, 2 s apart: on the map for 6 s
    await asyncio.sleep(1.5)
    watching = await venta(
        "watch",
        "--url",
        realtime.url,
        "--token",
        watcher.token,
        "--seconds",
        "6",
        f"--viewport={lat - 0.1},{long - 0.1},{lat + 0.1},{long + 0.1}",
    )  # '=': may start with '-'
    moved, _ = await asyncio.wait_for(walking.communicate(), 30)
    assert walking.returncode == 0, moved.decode()
    assert moved.decode().count('"ok": true') == 5, moved.decode()  # register-vendor + 4 updates
    output, _ = await asyncio.wait_for(watching.communicate(), 30)
    lines = output.decode().splitlines()
    events = {line.split()[1]: json.loads(line.split(None, 2)[2]) for line in lines if len(line.split()) > 2}
    assert [c["id"] for c in events["vendor_channels"]] == [vendor_id], lines
    assert events["vendor_sync"]["id"] == vendor_id, lines
    assert events["vendor_disconnect"] == {"id": vendor_id}, lines  # `move` ended: the vendor went offline
    assert "error" not in events, lines


async def test_the_terminal_client_refuses_garbage_arguments() -> None:
    for args in (
        ("watch", "--token", "t", "--viewport", "north"),
        ("watch", "--token", "t", "--viewport", "5,0,1,1"),
        ("move", "--token", "t", "--vendor", "v", "--at", "0,200"),
        ("move", "--token", "t"),
    ):
        proc = await venta(*args)
        output, _ = await proc.communicate()
        assert proc.returncode == 2, (args, output.decode())
        assert "Traceback" not in output.decode() and "error:" in output.decode(), output.decode()
