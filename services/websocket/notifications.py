"""`websocket.*` events on the bus, published without ever holding up a socket.

The gateway has no database, so there is no outbox: events wait in a bounded in-memory queue and one task publishes
them in order, reconnecting and retrying with backoff while NATS is away (the message id makes a retried publish a
duplicate JetStream drops). If NATS stays away long enough to fill the queue, the oldest notifications are dropped
and counted: these events describe connections, which the next connect/disconnect supersedes; they are not records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from pydantic import BaseModel

from services.event_catalog import CATALOG
from services.kit.events.bus import backoff_delay
from services.kit.events.envelope import Envelope, new_envelope
from services.kit.events.factory import event_bus
from services.kit.events.metrics import EVENTS_PUBLISH_FAILURES, type_label
from services.kit.events.settings import EventSettings
from services.kit.events.tracing import current_headers

log = logging.getLogger("venta.websocket.notifications")


class Notifier:
    def __init__(self, settings: EventSettings, *, client_name: str, max_queued: int = 10_000) -> None:
        self.bus = event_bus(settings, CATALOG, client_name=client_name)
        self.queue: asyncio.Queue[tuple[Envelope, dict[str, str]]] = asyncio.Queue(max_queued)
        self._task: asyncio.Task[None] | None = None

    def publish(self, event_type: str, data: BaseModel) -> None:
        envelope = new_envelope(event_type, data, version=CATALOG.latest_version(event_type))
        if self.queue.full():
            dropped, _ = self.queue.get_nowait()
            self.queue.task_done()
            EVENTS_PUBLISH_FAILURES.labels(type_label(dropped.type)).inc()
            log.warning("event queue full: dropped %s %s", dropped.type, dropped.message_id)
        self.queue.put_nowait((envelope, current_headers()))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="websocket-notifier")

    async def _run(self) -> None:
        attempt = 0
        while True:  # connect at once, so readiness reflects NATS before the first event
            try:
                await self.bus.connect()
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - NATS not there yet: readiness stays red meanwhile
                attempt += 1
                if attempt == 1 or attempt % 20 == 0:
                    log.warning("cannot reach NATS yet (%s), retrying", type(exc).__name__)
                await asyncio.sleep(backoff_delay(attempt, base_s=0.1, max_s=5.0))
        attempt = 0
        while True:
            envelope, headers = await self.queue.get()
            while True:
                try:
                    await self.bus.connect()
                    await self.bus.publish(envelope, headers=headers)
                    attempt = 0
                    self.queue.task_done()
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - NATS away or slow: keep the event, retry
                    attempt += 1
                    if attempt == 1 or attempt % 20 == 0:
                        log.warning("publishing %s failed (%s), retrying", envelope.type, type(exc).__name__)
                    await asyncio.sleep(backoff_delay(attempt, base_s=0.1, max_s=5.0))

    async def health(self) -> None:
        await self.bus.health()

    async def stop(self, timeout_s: float = 2.0) -> None:
        """Give queued events `timeout_s` to go out, then stop and drain the connection."""
        if self._task is not None and not self._task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.queue.join(), timeout_s)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.bus.close(), timeout_s)
