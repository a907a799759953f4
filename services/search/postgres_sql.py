"""The SQL of the self-hosted provider: table layout, upsert, swap, and the search query builder.

One table per index (`search_<index>`): the stored document as jsonb plus the columns queries need (name and
searchable text with a trigram GIN index for typo-tolerant matching, `open`, `lat`/`lng`). Kept apart from the
provider so that the query shapes can be read (and tested) on their own.
"""

from __future__ import annotations

import json
from typing import Any

from services.search.provider import SearchQuery
from services.search.records import DELETED, Document

EARTH_RADIUS_M = 6_371_008.8
METERS_PER_DEGREE_LAT = 111_320.0
WORD_SIMILARITY_THRESHOLD = "0.4"  # pg_trgm's `<%`: about one typo in a short word, two in a long one


def ddl(table: str) -> list[str]:
    return [
        f"""CREATE TABLE IF NOT EXISTS {table} (
            object_id text NOT NULL,
            doc jsonb NOT NULL,
            deleted boolean NOT NULL DEFAULT false,
            name text,
            search_text text,
            open boolean,
            lat double precision,
            lng double precision,
            CONSTRAINT {table}_pkey PRIMARY KEY (object_id)
        )""",
        f"CREATE INDEX IF NOT EXISTS {table}_trgm ON {table} USING gin (search_text gin_trgm_ops)",
        f"CREATE INDEX IF NOT EXISTS {table}_lat ON {table} (lat) WHERE NOT deleted",
    ]


def rename_statements(build: str, table: str) -> list[str]:
    """Put `build` in place of `table` (run in one transaction, after dropping `table`)."""
    return [
        f"ALTER TABLE {build} RENAME TO {table}",
        f"ALTER TABLE {table} RENAME CONSTRAINT {build}_pkey TO {table}_pkey",
        f"ALTER INDEX {build}_trgm RENAME TO {table}_trgm",
        f"ALTER INDEX {build}_lat RENAME TO {table}_lat",
    ]


def upsert(table: str) -> str:
    return f"""INSERT INTO {table} (object_id, doc, deleted, name, search_text, open, lat, lng)
        VALUES ($1, $2::jsonb, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (object_id) DO UPDATE SET doc = excluded.doc, deleted = excluded.deleted, name = excluded.name,
            search_text = excluded.search_text, open = excluded.open, lat = excluded.lat, lng = excluded.lng"""


def row(document: Document) -> tuple[Any, ...]:
    geo = document.get("_geoloc") or {}
    name = document.get("name")
    text = " ".join(str(part) for part in (name, document.get("description")) if part)
    return (
        document["objectID"],
        json.dumps(document),
        bool(document.get(DELETED, False)),
        name,
        text or None,
        document.get("open"),
        geo.get("lat"),
        geo.get("lng"),
    )


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(table: str, query: SearchQuery) -> tuple[str, list[Any]]:
    """SELECT doc, total for one page: matches rank first by text relevance, then by distance, then by name."""
    params: list[Any] = []

    def param(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    where = ["NOT deleted"]
    order = []
    if query.open is not None:
        where.append(f"open = {param(query.open)}")
    text = query.text.strip()
    if text:
        q, like = param(text), param(_like(text))
        where.append(f"(search_text ILIKE {like} OR {q} <% search_text)")
        order.append(
            f"(CASE WHEN name ILIKE {like} THEN 2 WHEN search_text ILIKE {like} THEN 1 ELSE 0 END"
            f" + word_similarity({q}, coalesce(name, '')) + 0.5 * word_similarity({q}, search_text)) DESC"
        )
    distance = "NULL::float8"
    if query.around is not None:
        lat, lng = param(query.around[0]), param(query.around[1])
        distance = (
            f"({EARTH_RADIUS_M} * 2 * asin(sqrt(power(sin(radians(lat - {lat}) / 2), 2)"
            f" + cos(radians({lat})) * cos(radians(lat)) * power(sin(radians(lng - {lng}) / 2), 2))))"
        )
        where.append("lat IS NOT NULL AND lng IS NOT NULL")
        if query.radius_m is not None:
            span = query.radius_m / METERS_PER_DEGREE_LAT
            where.append(f"lat BETWEEN {param(query.around[0] - span)} AND {param(query.around[0] + span)}")
            where.append(f"{distance} <= {param(float(query.radius_m))}")
        order.append(f"{distance} ASC")
    order += ["name ASC", "object_id ASC"]
    limit, offset = param(query.hits_per_page), param(query.page * query.hits_per_page)
    sql = (
        f"SELECT doc, count(*) OVER () AS total FROM {table} WHERE {' AND '.join(where)}"
        f" ORDER BY {', '.join(order)} LIMIT {limit} OFFSET {offset}"
    )
    return sql, params
