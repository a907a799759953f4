"""The position tables (one per kind of entity), described once for queries; created by migration 0001."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Float, MetaData, Table, Uuid

metadata = MetaData()


def _positions(name: str) -> Table:
    return Table(
        name,
        metadata,
        Column("entity_id", Uuid, primary_key=True),
        Column("lat", Float, nullable=False),
        Column("long", Float, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )


TABLES = {"vendor": _positions("vendor_location"), "user": _positions("user_location")}
