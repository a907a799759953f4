"""The one place a process gets its event bus: publishers and consumers depend on `EventBus`, not on a provider.

`VENTA_EVENTS_PROVIDER` chooses it: `jetstream` (NATS JetStream, the default) or `redis` (Redis Streams on the
platform's Redis). Both keep the protocol in `services.kit.events.bus` (de-duplicated publishes, durable consumers,
retries with backoff, dead letters), which is all the rest of the code may use, so the choice changes no call site.
What stays JetStream-specific on purpose, and refuses to run (`require_jetstream`) when the provider is `redis`:
re-reading the stream by sequence (`replay`, for the full re-index `venta reindex`) and the dead-letter stream's
tooling (`deadletters`, `venta deadletters`).
"""

from __future__ import annotations

from services.kit.config import ConfigError
from services.kit.events.bus import EventBus
from services.kit.events.catalog import Catalog
from services.kit.events.jetstream import JetStreamBus
from services.kit.events.redis_streams import RedisStreamsBus
from services.kit.events.settings import EventSettings


def event_bus(settings: EventSettings, catalog: Catalog, *, client_name: str) -> EventBus:
    """A bus for this process (not connected yet: `connect()` when the process is ready to wait for it)."""
    if settings.events_provider == "redis":
        return RedisStreamsBus(settings, catalog, client_name=client_name)
    return JetStreamBus(settings, catalog, client_name=client_name)


def broker_check(settings: EventSettings) -> str:
    """The name of the readiness check that waits for the bus: the server it needs (`nats`, or `redis`)."""
    return "redis" if settings.events_provider == "redis" else "nats"


def require_jetstream(settings: EventSettings, *, tool: str, why: str) -> None:
    """Refuse, in one line, to run a JetStream-only tool against a platform whose events are elsewhere."""
    if settings.events_provider != "jetstream":
        raise ConfigError(
            f"{tool} needs the events on NATS JetStream ({why}), but VENTA_EVENTS_PROVIDER is "
            f"{settings.events_provider!r}"
        )
