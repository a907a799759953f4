"""The transactional outbox: an event is a row written in the same transaction as the change it describes.

So the change and its event cannot diverge: both commit or neither does, and a crash after the commit loses
nothing, because the relay (`services.kit.events.relay`) publishes whatever is still pending when the service comes
back. The row stores the encoded envelope exactly as it will be published, plus the trace context of the request
that wrote it. Each service creates the table with its own Alembic migration calling `create_outbox_table_v1`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from alembic.operations import Operations
from pydantic import BaseModel
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Identity,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    event,
    func,
    insert,
    text,
)
from sqlmodel.ext.asyncio.session import AsyncSession

from services.kit.db.session import Database, Record
from services.kit.events.catalog import Catalog
from services.kit.events.envelope import Envelope, new_envelope
from services.kit.events.tracing import current_headers
from services.kit.logging import request_id_var

TABLE_NAME = "event_outbox"


def _columns() -> list[Any]:
    return [
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("message_id", String(64), nullable=False, unique=True),
        Column("type", String(128), nullable=False),
        Column("payload", Text, nullable=False),
        Column("headers", JSON, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("sent_at", DateTime(timezone=True)),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("last_error", Text),
    ]


OUTBOX = Table(TABLE_NAME, MetaData(), *_columns())
_INSERT = f"INSERT INTO {TABLE_NAME} (message_id, type, payload, headers) VALUES ($1, $2, $3, $4::json)"


def create_outbox_table_v1(op: Operations) -> None:
    """The outbox table as of version 1 (called by each service's migration; never change it, add a v2)."""
    op.create_table(TABLE_NAME, *_columns())
    op.create_index("ix_event_outbox_pending", TABLE_NAME, ["id"], postgresql_where=text("sent_at IS NULL"))
    op.create_index("ix_event_outbox_sent_at", TABLE_NAME, ["sent_at"])


def drop_outbox_table_v1(op: Operations) -> None:
    op.drop_table(TABLE_NAME)


class Outbox:
    """Adds events to the caller's transaction; after that transaction commits, `on_commit` wakes the relay."""

    def __init__(self, catalog: Catalog, *, on_commit: Callable[[], None] | None = None) -> None:
        self.catalog = catalog
        self.on_commit = on_commit

    def _envelope(self, event_type: str, data: BaseModel, correlation_id: str | None) -> Envelope:
        return new_envelope(
            event_type,
            data,
            version=self.catalog.latest_version(event_type),
            correlation_id=correlation_id or request_id_var.get(),
        )

    async def add_on(
        self,
        connection: asyncpg.Connection[Any],
        event_type: str,
        data: BaseModel,
        *,
        correlation_id: str | None = None,
    ) -> Envelope:
        """`add` inside `transaction()` (an asyncpg connection, the hot paths): the same row."""
        envelope = self._envelope(event_type, data, correlation_id)
        await connection.execute(
            _INSERT, envelope.message_id, envelope.type, envelope.encode().decode(), json.dumps(current_headers())
        )
        return envelope

    @asynccontextmanager
    async def transaction(self, db: Database) -> AsyncIterator[asyncpg.Connection[Record]]:
        """A transaction on `db`'s asyncpg pool (`Database.transaction()`) for changes and their `add_on` events;
        once it commits, `on_commit` wakes the relay (asyncpg has no commit hook of its own)."""
        async with db.transaction() as connection:
            yield connection
        if self.on_commit is not None:
            self.on_commit()

    async def add(
        self, session: AsyncSession, event_type: str, data: BaseModel, *, correlation_id: str | None = None
    ) -> Envelope:
        envelope = self._envelope(event_type, data, correlation_id)
        connection = await session.connection()
        await connection.execute(
            insert(OUTBOX).values(
                message_id=envelope.message_id,
                type=envelope.type,
                payload=envelope.encode().decode(),
                headers=current_headers(),
            )
        )
        if self.on_commit is not None:
            wake = self.on_commit
            event.listen(session.sync_session, "after_commit", lambda _: wake(), once=True)
        return envelope
