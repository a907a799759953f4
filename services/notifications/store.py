"""The notifications service's tables and every statement it runs on them (SQLAlchemy Core: one statement per step).

`vendor` is a projection of the vendor events (owner, name, open, version), enough to decide who hears of what;
`favourite` is the users' favourites; `notification` is what they are told. A notification is unique per
(user, dedupe key): the key is the event's message id when an event caused it, so a redelivered event creates
nothing, and `first-favourite:<vendor>` for a vendor's first favourite, which happens once. Event handling reads and
writes a vendor's row in one transaction (`FOR UPDATE`), so two deliveries cannot both see it closed and both notify.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    MetaData,
    Row,
    String,
    Table,
    Uuid,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.kit.db.session import Database

METADATA = MetaData()

VENDOR = Table(
    "vendor",
    METADATA,
    Column("id", Uuid, primary_key=True),
    Column("owner_id", Uuid, nullable=False),
    Column("name", String(256), nullable=False),
    Column("open", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("online_noticed_at", DateTime(timezone=True)),
)
FAVOURITE = Table(
    "favourite",
    METADATA,
    Column("user_id", Uuid, primary_key=True),
    Column("vendor_id", Uuid, primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
NOTIFICATION = Table(
    "notification",
    METADATA,
    Column("seq", BigInteger, primary_key=True),
    Column("id", Uuid, nullable=False),
    Column("user_id", Uuid, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("dedupe_key", String(256), nullable=False),
    Column("vendor_id", Uuid),
    Column("title", String(256), nullable=False),
    Column("body", String(1024), nullable=False),
    Column("data", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("read_at", DateTime(timezone=True)),
)
SHOWN = (
    NOTIFICATION.c.seq,
    NOTIFICATION.c.id,
    NOTIFICATION.c.user_id,
    NOTIFICATION.c.kind,
    NOTIFICATION.c.vendor_id,
    NOTIFICATION.c.title,
    NOTIFICATION.c.body,
    NOTIFICATION.c.data,
    NOTIFICATION.c.created_at,
    NOTIFICATION.c.read_at,
)


class Kind(StrEnum):
    VENDOR_OPENED = "VENDOR_OPENED"
    VENDOR_ONLINE = "VENDOR_ONLINE"
    FIRST_FAVOURITE = "FIRST_FAVOURITE"
    SUBSCRIPTION_CHANGED = "SUBSCRIPTION_CHANGED"


@dataclass(frozen=True)
class VendorFacts:
    """What the projection keeps of a vendor (from an event, or from VendorService when a favourite is added)."""

    id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    open: bool
    updated_at: datetime


class InvalidCursor(ValueError):
    pass


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"n:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        seq = int(value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursor("not a cursor this service gave out") from exc
    if kind != "n" or seq < 1:
        raise InvalidCursor("not a cursor this service gave out")
    return seq


class NotificationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- from events -------------------------------------------------------------------------------------------

    async def vendor_changed(self, vendor: VendorFacts, *, event_id: str) -> list[Row[Any]]:
        """Apply a vendor's newer state; notify its favouriting users when it went from closed to open."""
        async with self.db.engine.begin() as conn:
            before = (
                await conn.execute(
                    select(VENDOR.c.open, VENDOR.c.updated_at).where(VENDOR.c.id == vendor.id).with_for_update()
                )
            ).first()
            if before is not None and before.updated_at >= vendor.updated_at:
                return []  # a redelivery, or an event older than what the projection holds
            await self._upsert_vendor(conn, vendor)
            if before is None or before.open or not vendor.open:
                return []
            return await self._notify_favouriters(
                conn,
                vendor.id,
                kind=Kind.VENDOR_OPENED,
                dedupe_key=f"event:{event_id}",
                title=f"{vendor.name} is open",
                body=f"{vendor.name}, one of your favourites, just opened.",
            )

    async def vendor_deleted(self, vendor_id: uuid.UUID) -> None:
        async with self.db.engine.begin() as conn:
            await conn.execute(VENDOR.delete().where(VENDOR.c.id == vendor_id))  # favourites go with it (cascade)

    async def vendor_online(self, vendor_id: uuid.UUID, *, event_id: str, interval_s: float) -> list[Row[Any]]:
        """Notify favouriting users that the vendor came online, at most once per `interval_s` per vendor."""
        async with self.db.engine.begin() as conn:
            noticed = (
                await conn.execute(
                    update(VENDOR)
                    .where(VENDOR.c.id == vendor_id)
                    .where(
                        VENDOR.c.online_noticed_at.is_(None)
                        | (VENDOR.c.online_noticed_at < func.now() - timedelta(seconds=interval_s))
                    )
                    .values(online_noticed_at=func.now())
                    .returning(VENDOR.c.name)
                )
            ).first()
            if noticed is None:
                return []  # not anybody's favourite yet, or noticed recently
            return await self._notify_favouriters(
                conn,
                vendor_id,
                kind=Kind.VENDOR_ONLINE,
                dedupe_key=f"event:{event_id}",
                title=f"{noticed.name} is on the map",
                body=f"{noticed.name}, one of your favourites, is sharing its position now.",
            )

    async def notify(
        self,
        user_id: uuid.UUID,
        *,
        kind: Kind,
        dedupe_key: str,
        title: str,
        body: str,
        data: dict[str, Any],
        vendor_id: uuid.UUID | None = None,
    ) -> list[Row[Any]]:
        async with self.db.engine.begin() as conn:
            return await self._insert(
                conn,
                user_id=user_id,
                kind=kind,
                dedupe_key=dedupe_key,
                title=title,
                body=body,
                data=data,
                vendor_id=vendor_id,
            )

    # --- favourites ----------------------------------------------------------------------------------------------

    async def add_favourite(self, user_id: uuid.UUID, vendor: VendorFacts) -> tuple[Row[Any], list[Row[Any]]]:
        """Favourite `vendor` (idempotent); its owner hears of its first favourite (once; never of their own)."""
        async with self.db.engine.begin() as conn:
            await self._upsert_vendor(conn, vendor)
            added = (
                await conn.execute(
                    insert(FAVOURITE)
                    .values(user_id=user_id, vendor_id=vendor.id)
                    .on_conflict_do_nothing()
                    .returning(FAVOURITE.c.created_at)
                )
            ).first()
            created: list[Row[Any]] = []
            if added is not None and vendor.owner_id != user_id:
                count = await conn.scalar(
                    select(func.count()).select_from(FAVOURITE).where(FAVOURITE.c.vendor_id == vendor.id)
                )
                if count == 1:
                    created = await self._insert(
                        conn,
                        user_id=vendor.owner_id,
                        kind=Kind.FIRST_FAVOURITE,
                        dedupe_key=f"first-favourite:{vendor.id}",
                        title=f"{vendor.name} has its first fan",
                        body=f"Somebody added {vendor.name} to their favourites.",
                        data={},
                        vendor_id=vendor.id,
                    )
            favourite = (
                await conn.execute(
                    self._favourites().where(FAVOURITE.c.user_id == user_id, FAVOURITE.c.vendor_id == vendor.id)
                )
            ).one()
        return favourite, created

    async def remove_favourite(self, user_id: uuid.UUID, vendor_id: uuid.UUID) -> None:
        async with self.db.engine.begin() as conn:
            await conn.execute(
                FAVOURITE.delete().where(FAVOURITE.c.user_id == user_id, FAVOURITE.c.vendor_id == vendor_id)
            )

    async def favourites(self, user_id: uuid.UUID) -> Sequence[Row[Any]]:
        async with self.db.read_rows() as conn:
            query = self._favourites().where(FAVOURITE.c.user_id == user_id).order_by(FAVOURITE.c.created_at.desc())
            return (await conn.execute(query)).all()

    @staticmethod
    def _favourites() -> Any:
        return select(FAVOURITE.c.vendor_id, VENDOR.c.name, VENDOR.c.open, FAVOURITE.c.created_at).join(
            VENDOR, VENDOR.c.id == FAVOURITE.c.vendor_id
        )

    # --- reading and marking -------------------------------------------------------------------------------------

    async def page(
        self, user_id: uuid.UUID, *, before: int | None, limit: int, unread_only: bool
    ) -> tuple[Sequence[Row[Any]], int | None]:
        """Newest first; `before` is the cursor's sequence. The second value is the next page's, if there is one."""
        query = select(*SHOWN).where(NOTIFICATION.c.user_id == user_id)
        if before is not None:
            query = query.where(NOTIFICATION.c.seq < before)
        if unread_only:
            query = query.where(NOTIFICATION.c.read_at.is_(None))
        async with self.db.read_rows() as conn:
            rows = (await conn.execute(query.order_by(NOTIFICATION.c.seq.desc()).limit(limit + 1))).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (rows[-1].seq if more else None)

    async def unread(self, user_id: uuid.UUID) -> int:
        async with self.db.read_rows() as conn:
            query = select(func.count()).select_from(NOTIFICATION)
            count = await conn.scalar(query.where(NOTIFICATION.c.user_id == user_id, NOTIFICATION.c.read_at.is_(None)))
        return int(count or 0)

    async def mark_read(self, user_id: uuid.UUID, notification_id: uuid.UUID) -> Row[Any] | None:
        """Mark one read (idempotent: a read one keeps its first read time); None when it is not the user's."""
        async with self.db.engine.begin() as conn:
            await conn.execute(
                update(NOTIFICATION)
                .where(NOTIFICATION.c.id == notification_id, NOTIFICATION.c.user_id == user_id)
                .where(NOTIFICATION.c.read_at.is_(None))
                .values(read_at=func.now())
            )
            found = select(*SHOWN).where(NOTIFICATION.c.id == notification_id, NOTIFICATION.c.user_id == user_id)
            return (await conn.execute(found)).first()

    async def mark_all_read(self, user_id: uuid.UUID) -> int:
        async with self.db.engine.begin() as conn:
            result = await conn.execute(
                update(NOTIFICATION)
                .where(NOTIFICATION.c.user_id == user_id, NOTIFICATION.c.read_at.is_(None))
                .values(read_at=func.now())
            )
        return int(result.rowcount or 0)

    # --- shared steps --------------------------------------------------------------------------------------------

    @staticmethod
    async def _upsert_vendor(conn: AsyncConnection, vendor: VendorFacts) -> None:
        values = {
            "id": vendor.id,
            "owner_id": vendor.owner_id,
            "name": vendor.name,
            "open": vendor.open,
            "updated_at": vendor.updated_at,
        }
        statement = insert(VENDOR).values(**values)
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=[VENDOR.c.id],
                set_={k: statement.excluded[k] for k in ("owner_id", "name", "open", "updated_at")},
                where=VENDOR.c.updated_at < statement.excluded.updated_at,
            )
        )

    @staticmethod
    async def _notify_favouriters(
        conn: AsyncConnection, vendor_id: uuid.UUID, *, kind: Kind, dedupe_key: str, title: str, body: str
    ) -> list[Row[Any]]:
        fans = select(
            func.gen_random_uuid(),
            FAVOURITE.c.user_id,
            literal(kind.value),
            literal(dedupe_key),
            literal(vendor_id, Uuid),
            literal(title),
            literal(body),
            literal({}, JSONB),
        ).where(FAVOURITE.c.vendor_id == vendor_id)
        columns = ["id", "user_id", "kind", "dedupe_key", "vendor_id", "title", "body", "data"]
        statement = insert(NOTIFICATION).from_select(columns, fans).on_conflict_do_nothing().returning(*SHOWN)
        return list((await conn.execute(statement)).all())

    @staticmethod
    async def _insert(
        conn: AsyncConnection, *, user_id: uuid.UUID, vendor_id: uuid.UUID | None, **values: Any
    ) -> list[Row[Any]]:
        statement = (
            insert(NOTIFICATION)
            .values(id=uuid.uuid4(), user_id=user_id, vendor_id=vendor_id, **values)
            .on_conflict_do_nothing()
            .returning(*SHOWN)
        )
        return list((await conn.execute(statement)).all())
