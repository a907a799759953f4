"""The outbox relay: the task inside each publishing service that moves committed outbox rows onto the bus.

It publishes pending rows in id order (pipelined, `Nats-Msg-Id` = messageId), then marks the published prefix sent;
a row that fails stays pending and is retried with backoff, and nothing after it is marked, so the order of a
vendor's events survives failures. A crash between publishing and marking only causes a re-publish, which the
stream de-duplicates. Several replicas may run a relay: a transaction-scoped advisory lock lets one at a time
publish. It wakes right after a commit that added events (low latency) and polls otherwise (rows left by a crash,
or written by another replica). It never blocks the service: while NATS is down, requests still commit and the
outbox grows. Each row is published inside a PRODUCER span that continues the trace stored with the row (the
request's) and lasts until the stream acknowledges it; the relay's own queries run untraced, since polling would
otherwise start a trace every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.kit.db.session import Database
from services.kit.events.bus import EVENT_TYPE_HEADER, MSG_ID_HEADER, EventBus, PublishResult, backoff_delay
from services.kit.events.envelope import SUBJECT_PREFIX
from services.kit.events.metrics import OUTBOX_PENDING, OUTBOX_RELAY_LAG
from services.kit.events.outbox import OUTBOX
from services.kit.events.settings import EventSettings
from services.kit.events.tracing import context_from, end_span, start_publish
from services.kit.telemetry import untraced

log = logging.getLogger("venta.events.relay")

RELAY_LOCK_KEY = 0x56454E5441  # "VENTA": one relay per database publishes at a time
HOUSEKEEPING_EVERY_S = 5.0


class OutboxRelay:
    def __init__(self, *, db: Database, bus: EventBus, settings: EventSettings, service: str) -> None:
        self.db = db
        self.bus = bus
        self.settings = settings
        self.service = service
        self.published = 0
        self.last_error: str | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._publishing = False
        self._housekept = 0.0

    def notify(self) -> None:
        """Called after a commit that added events; safe from any coroutine of this loop."""
        self._wake.set()

    def start(self) -> None:
        """Start relaying in the background (needs a running loop); connects to NATS itself, retrying."""
        if self.settings.outbox_relay_enabled and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"{self.service}-outbox-relay")

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Stop; a batch being published is finished first (bounded by `timeout_s`), anything else is cancelled."""
        self._stopping = True
        self._wake.set()
        if self._task is not None and not self._publishing:
            self._task.cancel()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout_s)
            except (TimeoutError, asyncio.CancelledError):
                pass
            self._task = None

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                await self.bus.connect()
                self._publishing = True
                count = await self.publish_pending()
                await self._housekeeping()
            except Exception as exc:  # noqa: BLE001 - NATS or PostgreSQL trouble: keep the rows, retry later
                self._publishing = False
                failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                if failures == 1 or failures % 20 == 0:
                    log.warning("outbox relay: %s (attempt %d), retrying", self.last_error, failures)
                await self._pause(backoff_delay(failures, base_s=0.2, max_s=self.settings.outbox_retry_max_s))
                continue
            self._publishing = False
            failures = 0
            if count < self.settings.outbox_batch_size:
                await self._pause(self.settings.outbox_poll_s)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    async def publish_pending(self) -> int:
        """Publish one batch of pending rows; the number published. Raises after recording a failed row."""
        with untraced():
            return await self._publish_pending()

    async def _publish_pending(self) -> int:
        failure: BaseException | None = None
        async with self.db.engine.begin() as conn:
            if not await conn.scalar(select(func.pg_try_advisory_xact_lock(RELAY_LOCK_KEY))):
                return 0
            rows = (
                await conn.execute(
                    select(
                        OUTBOX.c.id,
                        OUTBOX.c.type,
                        OUTBOX.c.payload,
                        OUTBOX.c.headers,
                        OUTBOX.c.message_id,
                        OUTBOX.c.created_at,
                    )
                    .where(OUTBOX.c.sent_at.is_(None))
                    .order_by(OUTBOX.c.id)
                    .limit(self.settings.outbox_batch_size)
                )
            ).all()
            if not rows:
                return 0
            outcomes = await self._publish_rows(rows)
            sent = []
            for row, outcome in zip(rows, outcomes, strict=True):
                if not isinstance(outcome, PublishResult):
                    failure = outcome
                    await self._record_failure(conn, row.id, outcome)
                    break
                sent.append(row)
            await self._mark_sent(conn, sent)
        self.published += len(sent)
        if failure is not None:
            raise failure
        return len(sent)

    async def _publish_rows(self, rows: Sequence[Row[Any]]) -> list[PublishResult | BaseException]:
        """Publish `rows` pipelined, each in a PRODUCER span child of the trace stored with it."""
        messages, spans = [], []
        try:
            for row in rows:
                subject = SUBJECT_PREFIX + row.type
                span, trace_headers = start_publish(subject, row.message_id, parent=context_from(row.headers))
                spans.append(span)
                headers = {**trace_headers, MSG_ID_HEADER: row.message_id, EVENT_TYPE_HEADER: row.type}
                messages.append((subject, row.payload.encode(), headers, row.type))
            outcomes = await self.bus.publish_pipelined(messages)
        except BaseException as exc:
            for span in spans:
                end_span(span, exc)
            raise
        for span, outcome in zip(spans, outcomes, strict=True):
            end_span(span, outcome if isinstance(outcome, BaseException) else None)
        return outcomes

    async def _mark_sent(self, conn: AsyncConnection, rows: Sequence[Row[Any]]) -> None:
        if not rows:
            return
        now = datetime.now(UTC)
        await conn.execute(update(OUTBOX).where(OUTBOX.c.id.in_([r.id for r in rows])).values(sent_at=func.now()))
        lag = OUTBOX_RELAY_LAG.labels(self.service)
        for row in rows:
            lag.observe(max(0.0, (now - row.created_at).total_seconds()))

    async def _record_failure(self, conn: AsyncConnection, row_id: int, exc: BaseException) -> None:
        await conn.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id == row_id)
            .values(attempts=OUTBOX.c.attempts + 1, last_error=f"{type(exc).__name__}: {exc}"[:1000])
        )

    async def _housekeeping(self) -> None:
        """Now and then: export the pending count and delete rows sent longer ago than the retention."""
        if time.monotonic() - self._housekept < HOUSEKEEPING_EVERY_S:
            return
        self._housekept = time.monotonic()
        cutoff = datetime.now(UTC) - timedelta(seconds=self.settings.outbox_retention_s)
        with untraced():
            await self._delete_sent(cutoff)

    async def _delete_sent(self, cutoff: datetime) -> None:
        async with self.db.engine.begin() as conn:
            pending = await conn.scalar(select(func.count()).select_from(OUTBOX).where(OUTBOX.c.sent_at.is_(None)))
            await conn.execute(OUTBOX.delete().where(OUTBOX.c.sent_at < cutoff))
        OUTBOX_PENDING.labels(self.service).set(int(pending or 0))

    async def pending(self) -> int:
        async with self.db.engine.connect() as conn:
            count = await conn.scalar(select(func.count()).select_from(OUTBOX).where(OUTBOX.c.sent_at.is_(None)))
        return int(count or 0)
