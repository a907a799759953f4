"""Everything a service needs to publish events, wired once: the bus, the outbox writer and its relay.

A service builds `EventPublishing.for_service(...)` in its `build()`, hands `outbox` to its repository calls, calls
`start()` (the relay runs in the background and connects to the broker itself, so the service serves even while the
broker is down: events wait in the outbox) and registers `stop` with its host's shutdown hooks.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.kit.db.session import Database
from services.kit.events.bus import EventBus
from services.kit.events.catalog import Catalog
from services.kit.events.factory import event_bus
from services.kit.events.outbox import Outbox
from services.kit.events.relay import OutboxRelay
from services.kit.events.settings import EventSettings


@dataclass(frozen=True)
class EventPublishing:
    bus: EventBus
    relay: OutboxRelay
    outbox: Outbox

    @classmethod
    def for_service(cls, settings: EventSettings, db: Database, catalog: Catalog, *, service: str) -> EventPublishing:
        bus = event_bus(settings, catalog, client_name=f"{service}-outbox-relay")
        relay = OutboxRelay(db=db, bus=bus, settings=settings, service=service)
        return cls(bus=bus, relay=relay, outbox=Outbox(catalog, on_commit=relay.notify))

    def start(self) -> None:
        self.relay.start()

    async def stop(self) -> None:
        """Let the relay finish its batch, then close the bus (NATS drains its connection)."""
        await self.relay.stop()
        await self.bus.close()
