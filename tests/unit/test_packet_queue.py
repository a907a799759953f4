"""`PacketQueue` (services/websocket/fanout.py) keeps asyncio.Queue's contract as Engine.IO's writer uses it:
`wait_for(get(), timeout)`, `get_nowait`, `put`/`put_nowait`, `task_done` and `join`, with no packet lost to a
timed-out or cancelled wait, and in order."""

from __future__ import annotations

import asyncio

import pytest

from services.websocket.fanout import PacketQueue


async def test_a_waiting_get_receives_the_next_put_in_order() -> None:
    queue = PacketQueue()
    waiting = asyncio.ensure_future(asyncio.wait_for(queue.get(), 5))
    await asyncio.sleep(0)
    for packet in ("a", "b", "c"):
        queue.put_nowait(packet)
    assert await waiting == "a"
    assert queue.qsize() == 2 and [queue.get_nowait(), await queue.get()] == ["b", "c"]


async def test_a_packet_put_first_is_there_at_once() -> None:
    queue = PacketQueue()
    await queue.put("a")
    future = queue.get()
    assert future.done() and future.result() == "a" and queue.empty()


async def test_a_timed_out_get_loses_nothing() -> None:
    queue = PacketQueue()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(queue.get(), 0.01)
    queue.put_nowait("after the timeout")
    assert queue.qsize() == 1
    assert await asyncio.wait_for(queue.get(), 1) == "after the timeout"


async def test_a_cancelled_waiter_loses_nothing() -> None:
    queue = PacketQueue()
    writer = asyncio.ensure_future(asyncio.wait_for(queue.get(), 5))
    await asyncio.sleep(0)
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer
    queue.put_nowait("kept")
    assert queue.get_nowait() == "kept"


async def test_task_done_and_join_count_packets_handed_to_a_waiter() -> None:
    queue = PacketQueue()
    waiting = asyncio.ensure_future(asyncio.wait_for(queue.get(), 5))
    await asyncio.sleep(0)
    queue.put_nowait("handed over")
    queue.put_nowait("queued")
    joined = asyncio.ensure_future(queue.join())
    assert await waiting == "handed over"
    queue.task_done()
    await asyncio.sleep(0)
    assert not joined.done()  # one still unfinished
    assert queue.get_nowait() == "queued"
    queue.task_done()
    await asyncio.wait_for(joined, 1)
    with pytest.raises(ValueError):
        queue.task_done()  # as asyncio.Queue: more task_done() than packets
