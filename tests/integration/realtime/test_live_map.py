"""Live locations and viewports end to end: a vendor's socket moves it, a user's socket watching the area sees it.

Everything goes through the public interfaces: Socket.IO clients on one side, the location service's gRPC API read
directly on the other (to prove the position was stored, not only relayed).
"""

from __future__ import annotations

import asyncio

from tests.support.realtime import Realtime, unique_area


def viewport(south: float, west: float, north: float, east: float) -> dict[str, dict[str, float]]:
    return {"swLocation": {"lat": south, "long": west}, "neLocation": {"lat": north, "long": east}}


async def test_user_sees_a_vendor_appear_and_move(realtime: Realtime) -> None:
    owner, watcher = await realtime.account(), await realtime.account()
    vendor_id = await realtime.vendor(owner)
    lat, long = unique_area()
    vendor = await realtime.connect("/vendor", owner)
    user = await realtime.connect("/user", watcher)
    try:
        assert await vendor.call("register-vendor", {"vendorId": vendor_id}) == {"ok": True, "vendorId": vendor_id}
        moved = await vendor.call("updateVendorLocation", {"vendorId": vendor_id, "lat": lat, "long": long})
        assert moved["ok"] is True and moved["updatedAt"]
        assert (await realtime.vendors_in(lat - 0.01, long - 0.01, lat + 0.01, long + 0.01)) == {vendor_id: (lat, long)}

        await user.emit("updateUserLocation", viewport(lat - 0.1, long - 0.1, lat + 0.1, long + 0.1))
        channels = await user.next("vendor_channels")
        assert channels == [{"id": vendor_id, "location": {"lat": lat, "long": long}}]

        await vendor.emit("updateVendorLocation", {"vendorId": vendor_id, "lat": lat + 0.01, "long": long})
        assert await user.next("vendor_sync") == {"id": vendor_id, "location": {"lat": lat + 0.01, "long": long}}
        assert user.drain("error") == [] and vendor.drain("error") == []
    finally:
        await vendor.close()
        await user.close()


async def test_viewport_changes_move_the_socket_between_rooms(realtime: Realtime) -> None:
    owner, watcher = await realtime.account(), await realtime.account()
    first, second = await realtime.vendor(owner, "First"), await realtime.vendor(owner, "Second")
    lat, long = unique_area()
    vendor = await realtime.connect("/vendor", owner)
    user = await realtime.connect("/user", watcher)
    try:
        await vendor.call("updateVendorLocation", {"vendorId": first, "lat": lat, "long": long})
        await vendor.call("updateVendorLocation", {"vendorId": second, "lat": lat + 0.5, "long": long})
        here = viewport(lat - 0.1, long - 0.1, lat + 0.1, long + 0.1)

        await user.emit("updateUserLocation", here)
        assert [c["id"] for c in await user.next("vendor_channels")] == [first]

        # the second vendor drives into the watched area: the next viewport update has it, and its room
        await vendor.call("updateVendorLocation", {"vendorId": second, "lat": lat + 0.05, "long": long})
        await user.nothing("vendor_sync", within=0.5)  # not watched yet
        await user.emit("updateUserLocation", here)
        assert sorted(c["id"] for c in await user.next("vendor_channels")) == sorted([first, second])
        await vendor.call("updateVendorLocation", {"vendorId": second, "lat": lat + 0.06, "long": long})
        assert (await user.next("vendor_sync"))["id"] == second

        # the user pans away: both rooms are left, moves are no longer delivered
        await user.emit("updateUserLocation", viewport(lat - 5.1, long - 0.1, lat - 5, long + 0.1))
        assert await user.next("vendor_channels") == []
        await vendor.call("updateVendorLocation", {"vendorId": first, "lat": lat + 0.01, "long": long})
        await user.nothing("vendor_sync", within=0.5)
    finally:
        await vendor.close()
        await user.close()


async def test_a_vendor_cannot_speak_for_a_vendor_it_does_not_own(realtime: Realtime) -> None:
    owner, intruder = await realtime.account(), await realtime.account()
    vendor_id = await realtime.vendor(owner)
    lat, long = unique_area()
    socket = await realtime.connect("/vendor", intruder)
    try:
        refused = await socket.call("register-vendor", {"vendorId": vendor_id})
        assert refused["ok"] is False and refused["code"] == "FORBIDDEN"
        assert (await socket.next("error"))["code"] == "FORBIDDEN"

        await socket.emit("updateVendorLocation", {"vendorId": vendor_id, "lat": lat, "long": long})
        assert (await socket.next("error"))["code"] == "FORBIDDEN"
        assert await realtime.vendors_in(lat - 1, long - 1, lat + 1, long + 1) == {}
        assert socket.connected  # refused, not disconnected
    finally:
        await socket.close()


async def test_register_user_must_name_the_token_user(realtime: Realtime) -> None:
    account, other = await realtime.account(), await realtime.account()
    socket = await realtime.connect("/user", account)
    try:
        assert await socket.call("register-user", {"userId": account.user_id}) == {
            "ok": True,
            "userId": account.user_id,
        }
        refused = await socket.call("register-user", {"userId": other.user_id})
        assert refused == {"ok": False, "code": "FORBIDDEN", "message": "userId is not the user of this token"}
        assert (await socket.next("error"))["code"] == "FORBIDDEN"
    finally:
        await socket.close()


async def test_many_watchers_all_receive_every_move(realtime: Realtime) -> None:
    owner = await realtime.account()
    vendor_id = await realtime.vendor(owner)
    lat, long = unique_area()
    vendor = await realtime.connect("/vendor", owner)
    await vendor.call("updateVendorLocation", {"vendorId": vendor_id, "lat": lat, "long": long})
    watchers = [await realtime.connect("/user", await realtime.account()) for _ in range(5)]
    try:
        for user in watchers:
            await user.emit("updateUserLocation", viewport(lat - 0.1, long - 0.1, lat + 0.1, long + 0.1))
            assert len(await user.next("vendor_channels")) == 1
        for step in range(1, 11):
            await vendor.emit("updateVendorLocation", {"vendorId": vendor_id, "lat": lat + step / 1000, "long": long})
        for user in watchers:
            seen = [(await user.next("vendor_sync"))["location"]["lat"] for _ in range(10)]
            assert seen == [lat + step / 1000 for step in range(1, 11)]  # all of them, in order
    finally:
        await vendor.close()
        await asyncio.gather(*(user.close() for user in watchers))
