"""Live delivery: each new notification is emitted as `notification` to its user's room on the `/user` namespace.

The service is not a Socket.IO server: it emits through a write-only python-socketio Redis manager on the channel the
websocket replicas listen on, so the replica that holds the user's socket (any of them) delivers it. A user's sockets
join `user:<userId>` when they connect. Delivery is best effort by design: the notification is stored first, and a
client that was offline reads it over HTTP; a push that fails is counted, never retried. The library's Redis manager
swallows publish errors, so a small subclass makes them visible (`_publish`, checked by the tests on the pinned
version).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import socketio
from prometheus_client import Counter
from sqlalchemy import Row

from services.notifications.views import notification_view

log = logging.getLogger("venta.notifications.push")

USERS_NAMESPACE = "/user"
EVENT = "notification"

PUSHED = Counter(
    "venta_notifications_pushed_total",
    "Notifications handed to the Socket.IO replicas, by outcome (sent, no_listener: no replica subscribed, failed)",
    ["outcome"],
)


def user_room(user_id: object) -> str:
    return f"user:{user_id}"


class _ReportingRedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    """python-socketio's Redis manager, except that a failed publish raises (the library logs and carries on) and a
    publish's result (how many replicas were listening) is kept, so that pushes are counted honestly."""

    last_receivers: int | None = None

    async def _publish(self, data: Any) -> Any:
        if not getattr(self, "connected", False):
            self._redis_connect()
        try:
            receivers = await self.redis.publish(self.channel, self.json.dumps(data))
        except Exception:
            self.connected = False  # reconnect on the next push
            raise
        self.last_receivers = int(receivers)
        return receivers


class Pusher:
    def __init__(self, redis_dsn: str, *, channel: str) -> None:
        self.manager = _ReportingRedisManager(redis_dsn, channel=channel, write_only=True, logger=log)

    async def push(self, notifications: Sequence[Row[Any]]) -> None:
        for row in notifications:
            try:
                await self.manager.emit(
                    EVENT,
                    notification_view(row).model_dump(mode="json", by_alias=True),
                    room=user_room(row.user_id),
                    namespace=USERS_NAMESPACE,
                )
            except Exception as exc:  # noqa: BLE001 - stored already: the client reads it over HTTP
                PUSHED.labels("failed").inc()
                log.warning("could not push notification %s (%s)", row.id, type(exc).__name__)
            else:  # nobody listening: no replica is running (the notification waits over HTTP)
                PUSHED.labels("sent" if self.manager.last_receivers else "no_listener").inc()
