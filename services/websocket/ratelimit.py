"""Per-socket rate limits on the update events (SPEC: 15 viewport and 30 vendor location updates per minute).

A socket lives on one replica, so its counters live in that replica's memory, dropped when the socket goes. Each
(socket, event) keeps the times of its last `amount` accepted updates: an update is refused while the oldest of them
is younger than the window, so no window of that length ever holds more than `amount` accepted updates (a moving
window; refused updates do not count). Going over the limit costs the client an `error` event, not its connection:
a map that updates too eagerly should slow down, not lose its live feed.

Not the `limits` library here (the HTTP gateway counts with it, in Redis): its asyncio in-memory storage expires
entries by a pass over every key after each hit, one `asyncio.to_thread` per key, which took about a third of the
gateway's CPU while it fanned a vendor's moves out to 1,000 watchers (bench/README.md, "Socket.IO fan-out"). Here a
check is one deque lookup and nothing runs in the background.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from services.kit.metrics import RATE_LIMIT_REJECTIONS
from services.websocket.errors import ErrorCode, SocketError


class SocketRateLimits:
    def __init__(
        self,
        *,
        service: str,
        limits: dict[str, int],
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if any(amount < 1 for amount in limits.values()) or window_s <= 0:
            raise ValueError(f"rate limits need amounts >= 1 and a window > 0: {limits}, {window_s}")
        self.service = service
        self.limits = dict(limits)
        self.window_s = window_s
        self._clock = clock
        self._accepted: dict[tuple[str, str], deque[float]] = {}

    def check(self, event: str, sid: str) -> None:
        """Count one `event` from socket `sid`; SocketError(RATE_LIMITED) when the socket is over its limit."""
        amount = self.limits.get(event)
        if amount is None:
            return
        now = self._clock()
        accepted = self._accepted.get((sid, event))
        if accepted is None:
            accepted = self._accepted[(sid, event)] = deque(maxlen=amount)
        elif len(accepted) == amount and now - accepted[0] < self.window_s:
            RATE_LIMIT_REJECTIONS.labels(self.service, event).inc()
            retry_in = max(1, round(accepted[0] + self.window_s - now))
            raise SocketError(
                ErrorCode.RATE_LIMITED,
                f"{event} is limited to {amount} per {self.window_s:g} s; retry in {retry_in} s",
            )
        accepted.append(now)  # a full deque drops its oldest time

    def forget(self, sid: str) -> None:
        for event in self.limits:
            self._accepted.pop((sid, event), None)

    def __len__(self) -> int:
        """How many (socket, event) counters are held: what `forget` must bring back down."""
        return len(self._accepted)
