"""Events in, notifications out: which event tells whom what.

- `vendor.created` / `vendor.updated` keep the vendor projection; closed -> open notifies every user who favourites
  the vendor (VENDOR_OPENED); `vendor.deleted` drops the vendor and its favourites;
- `websocket.vendor.connected` notifies them that the vendor is on the map (VENDOR_ONLINE), at most once per
  `online_notice_interval_s`;
- `user.subscription.updated` tells the user (SUBSCRIPTION_CHANGED).
Every notification is stored before it is pushed, keyed by the event's message id, so handling an event twice (every
delivery is at least once) stores and pushes nothing the second time. An event whose ids are not UUIDs is poison.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter
from sqlalchemy import Row

from services.event_catalog import UserSubscriptionData, VendorData, WebsocketVendorData
from services.kit.events.bus import Event, Poison
from services.notifications.push import Pusher
from services.notifications.store import Kind, NotificationStore, VendorFacts

log = logging.getLogger("venta.notifications.events")

CREATED = Counter("venta_notifications_created_total", "Notifications stored, by kind", ["kind"])

PATTERNS = {
    "vendors": "vendor.>",
    "presence": "websocket.vendor.connected",
    "subscriptions": "user.subscription.updated",
}


def _uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise Poison("invalid_id", f"{field} is not a UUID: {value[:64]!r}") from exc


def vendor_facts(data: VendorData) -> VendorFacts:
    return VendorFacts(
        id=_uuid(data.id, "id"),
        owner_id=_uuid(data.owner_id, "ownerId"),
        name=data.name,
        open=data.open,
        updated_at=data.updated_at,
    )


class EventHandler:
    def __init__(self, store: NotificationStore, pusher: Pusher, *, online_notice_interval_s: float) -> None:
        self.store = store
        self.pusher = pusher
        self.online_notice_interval_s = online_notice_interval_s

    async def __call__(self, events: Sequence[Event]) -> None:
        for event in events:
            created = await self._handle(event)
            for row in created:
                CREATED.labels(row.kind).inc()
            if created:
                await self.pusher.push(created)

    async def _handle(self, event: Event) -> list[Row[Any]]:
        data, event_id = event.data, event.envelope.message_id
        if isinstance(data, VendorData):
            if event.envelope.type == "vendor.deleted":
                await self.store.vendor_deleted(_uuid(data.id, "id"))
                return []
            return await self.store.vendor_changed(vendor_facts(data), event_id=event_id)
        if isinstance(data, WebsocketVendorData) and event.envelope.type == "websocket.vendor.connected":
            return await self.store.vendor_online(
                _uuid(data.vendor_id, "vendorId"), event_id=event_id, interval_s=self.online_notice_interval_s
            )
        if isinstance(data, UserSubscriptionData):
            status = data.status.value
            return await self.store.notify(
                _uuid(data.user_id, "userId"),
                kind=Kind.SUBSCRIPTION_CHANGED,
                dedupe_key=f"event:{event_id}",
                title=f"Subscription {status.lower()}",
                body=f"Your subscription to {data.product_id} is now {status} ({data.event_type}).",
                data={
                    "status": status,
                    "productId": data.product_id,
                    "periodEnd": data.period_end.isoformat() if data.period_end else None,
                    "eventType": data.event_type,
                },
            )
        return []  # vendor.location.updated and the like: nothing to tell anybody
