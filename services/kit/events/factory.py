"""The one place a process gets its event bus: publishers and consumers depend on `EventBus`, not on a provider.

NATS JetStream is the provider today; the protocol in `services.kit.events.bus` is all the rest of the code may use,
so a second provider (selected here by a setting) changes no call site. What stays JetStream-specific on purpose:
re-reading the stream by sequence (`replay`, for the full re-index) and the dead-letter stream's tooling.
"""

from __future__ import annotations

from services.kit.events.bus import EventBus
from services.kit.events.catalog import Catalog
from services.kit.events.jetstream import JetStreamBus
from services.kit.events.settings import EventSettings


def event_bus(settings: EventSettings, catalog: Catalog, *, client_name: str) -> EventBus:
    """A bus for this process (not connected yet: `connect()` when the process is ready to wait for it)."""
    return JetStreamBus(settings, catalog, client_name=client_name)
