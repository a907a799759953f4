"""The Socket.IO gateway's per-socket moving window, on a clock the test moves (no sleeps, no timing).

tests/integration/realtime/test_presence.py drives the same limits through real sockets (SPEC's 30 and 15 per minute).
"""

from __future__ import annotations

import pytest

from services.kit.metrics import RATE_LIMIT_REJECTIONS
from services.websocket.errors import ErrorCode, SocketError
from services.websocket.ratelimit import SocketRateLimits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limits(clock: Clock, **amounts: int) -> SocketRateLimits:
    return SocketRateLimits(service="test-ws", limits=amounts, window_s=60, clock=clock)


def refused(rates: SocketRateLimits, event: str, sid: str) -> str:
    with pytest.raises(SocketError) as caught:
        rates.check(event, sid)
    assert caught.value.code == ErrorCode.RATE_LIMITED
    return str(caught.value.message)


def test_no_window_holds_more_than_the_amount() -> None:
    clock = Clock()
    rates = limits(clock, move=3)
    for second in (0, 10, 20):
        clock.now = 1000 + second
        rates.check("move", "a")
    clock.now = 1059.9  # the first is still inside the window
    assert refused(rates, "move", "a") == "move is limited to 3 per 60 s; retry in 1 s"
    clock.now = 1060.0  # the first left it: one more, and only one
    rates.check("move", "a")
    assert refused(rates, "move", "a") == "move is limited to 3 per 60 s; retry in 10 s"
    clock.now = 1080.0
    rates.check("move", "a")
    clock.now = 1200.0  # everything old: a full budget again
    for _ in range(3):
        rates.check("move", "a")
    refused(rates, "move", "a")


def test_refused_updates_do_not_count() -> None:
    clock = Clock()
    rates = limits(clock, move=2)
    rates.check("move", "a")
    rates.check("move", "a")
    for _ in range(50):  # a client hammering while refused
        clock.now += 0.5
        refused(rates, "move", "a")
    clock.now = 1060.0  # 60 s after the two accepted ones, whatever was refused in between
    rates.check("move", "a")


def test_sockets_and_events_have_their_own_budgets() -> None:
    clock = Clock()
    rates = limits(clock, move=1, pan=1)
    rates.check("move", "a")
    rates.check("move", "b")
    rates.check("pan", "a")
    refused(rates, "move", "a")
    refused(rates, "pan", "a")
    rates.check("heartbeat", "a")  # not a limited event: never refused, never counted
    rates.check("heartbeat", "a")
    assert len(rates) == 3


def test_refusals_are_counted_by_event() -> None:
    rates = limits(Clock(), move=1)
    before = RATE_LIMIT_REJECTIONS.labels("test-ws", "move")._value.get()
    rates.check("move", "a")
    refused(rates, "move", "a")
    refused(rates, "move", "a")
    assert RATE_LIMIT_REJECTIONS.labels("test-ws", "move")._value.get() == before + 2


def test_forget_drops_a_socket_and_only_it() -> None:
    rates = limits(Clock(), move=1, pan=1)
    rates.check("move", "a")
    rates.check("pan", "a")
    rates.check("move", "b")
    rates.forget("a")
    rates.forget("never-seen")
    assert len(rates) == 1
    rates.check("move", "a")  # a new socket with the same id starts with a full budget
    refused(rates, "move", "b")


@pytest.mark.parametrize(("amounts", "window_s"), [({"move": 0}, 60), ({"move": -1}, 60), ({"move": 1}, 0)])
def test_nonsense_limits_are_refused(amounts: dict[str, int], window_s: float) -> None:
    with pytest.raises(ValueError, match="rate limits need"):
        SocketRateLimits(service="test-ws", limits=amounts, window_s=window_s)
