"""The SQL of the self-hosted provider: table layout, upsert, swap, and the search query builder.

One table per index (`search_<index>`): the stored document as jsonb plus the columns queries need: `search_text`
(name and description, trigram GIN index, for exact substring matches), `words` (the document's distinct words,
lowercased, between spaces, trigram GIN index, for typo matches), `open`, `lat`/`lng`. Kept apart from the provider
so that the query shapes can be read (and tested) on their own.

Typo matching is PostgreSQL's: pg_trgm's index finds the candidate rows through LIKE patterns that every word one
edit away from a query word satisfies (`typo_patterns`), fuzzystrmatch's `levenshtein_less_equal` plus a check of
the adjacent swaps (which Levenshtein counts as two edits) confirms them. Word similarity alone cannot do it: a
transposition in a five-letter word ("tcaos" for "tacos") leaves it 0.2 similar, below any threshold that keeps
unrelated words out.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from services.kit.geo import EARTH_RADIUS_M
from services.search.provider import SearchQuery
from services.search.records import DELETED, Document

METERS_PER_DEGREE_LAT = 111_320.0
TYPO_MIN_LETTERS = 4  # one typo from four letters, as Algolia's minWordSizefor1Typo
TYPO_MAX_LETTERS = 64  # longer words match exactly (levenshtein takes at most 255 characters)
MAX_QUERY_WORDS = 32  # a longer query (nobody types one) matches as an exact substring only
_WORD = re.compile(r"[^\W_]+")  # letters and digits: never a LIKE wildcard or escape

COLUMNS = "object_id, doc, deleted, name, search_text, open, lat, lng, words"


def words(text: str) -> list[str]:
    """The distinct words of `text` (NFKC, lowercased), in order: what typo matching compares."""
    return list(dict.fromkeys(_WORD.findall(unicodedata.normalize("NFKC", text).lower())))


def _text(document: Document) -> str:
    return " ".join(str(part) for part in (document.get("name"), document.get("description")) if part)


def words_column(document: Document) -> str:
    """The `words` value of a document: its words between single spaces, a space before and after."""
    return " ".join(["", *words(_text(document)), ""])


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
            words text,
            CONSTRAINT {table}_pkey PRIMARY KEY (object_id)
        )""",
        # a table made before typo matching gets the column (an ALTER only then: it locks out searches)
        f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = '{table}'::regclass AND attname = 'words') THEN
                ALTER TABLE {table} ADD COLUMN words text;
            END IF;
        END $$""",
        f"CREATE INDEX IF NOT EXISTS {table}_trgm ON {table} USING gin (search_text gin_trgm_ops)",
        f"CREATE INDEX IF NOT EXISTS {table}_words ON {table} USING gin (words gin_trgm_ops)",
        f"CREATE INDEX IF NOT EXISTS {table}_lat ON {table} (lat) WHERE NOT deleted",
    ]


def after_bulk_load(table: str) -> list[str]:
    """Run after a rebuild's load: rows inserted in bulk leave entries in the GIN indexes' pending lists (at most
    `gin_pending_list_limit`), which the planner counts against the index until a vacuum merges them, and the new
    table has no statistics yet. Both would send text searches to a sequential scan."""
    return [
        f"SELECT gin_clean_pending_list('{table}_trgm'::regclass)",
        f"SELECT gin_clean_pending_list('{table}_words'::regclass)",
        f"ANALYZE {table}",
    ]


def missing_words(table: str) -> str:
    """Up to $1 rows written before the `words` column existed (filled by `open`)."""
    return f"SELECT object_id, doc FROM {table} WHERE words IS NULL LIMIT $1"


def set_words(table: str) -> str:
    """Fill `words` ($2) of a row unless it was written meanwhile (its document, $3, changed)."""
    return f"UPDATE {table} SET words = $2 WHERE object_id = $1 AND words IS NULL AND doc = $3::jsonb"


def rename_statements(build: str, table: str) -> list[str]:
    """Put `build` in place of `table` (run in one transaction, after dropping `table`)."""
    return [
        f"ALTER TABLE {build} RENAME TO {table}",
        f"ALTER TABLE {table} RENAME CONSTRAINT {build}_pkey TO {table}_pkey",
        f"ALTER INDEX {build}_trgm RENAME TO {table}_trgm",
        f"ALTER INDEX {build}_words RENAME TO {table}_words",
        f"ALTER INDEX {build}_lat RENAME TO {table}_lat",
    ]


def carry_tombstones(table: str, build: str) -> str:
    """Copy `table`'s tombstones into `build` (before the swap), so a deletion survives a rebuild."""
    return (
        f"INSERT INTO {build} ({COLUMNS}) SELECT {COLUMNS} FROM {table} WHERE deleted"
        " ON CONFLICT (object_id) DO NOTHING"
    )


def upsert(table: str) -> str:
    return f"""INSERT INTO {table} ({COLUMNS}) VALUES ($1, $2::jsonb, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (object_id) DO UPDATE SET doc = excluded.doc, deleted = excluded.deleted, name = excluded.name,
            search_text = excluded.search_text, open = excluded.open, lat = excluded.lat, lng = excluded.lng,
            words = excluded.words"""


def row(document: Document) -> tuple[Any, ...]:
    geo = document.get("_geoloc") or {}
    return (
        document["objectID"],
        json.dumps(document),
        bool(document.get(DELETED, False)),
        document.get("name"),
        _text(document) or None,
        document.get("open"),
        geo.get("lat"),
        geo.get("lng"),
        words_column(document),
    )


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like(text: str) -> str:
    return f"%{_escape(text)}%"


def typo_patterns(term: str) -> list[str]:
    """LIKE patterns on `words`, one of which every word matching `term` satisfies: what the index looks up.

    A word that starts with `term` starts with its first half. A word one edit away from `term` (a letter
    swapped with the next, missing, extra or wrong) keeps the first half or the second half of `term` intact,
    unless the edit swaps the two letters where the halves meet: it starts with the first half, ends with the
    second, or is that swap. Too short or too long for typos: only words starting with `term`.
    """
    if not TYPO_MIN_LETTERS <= len(term) <= TYPO_MAX_LETTERS:
        return [f"% {_escape(term)}%"]
    half = len(term) // 2
    swapped = term[: half - 1] + term[half] + term[half - 1] + term[half + 1 :]
    return [f"% {_escape(term[:half])}%", f"%{_escape(term[half:])} %", f"% {_escape(swapped)} %"]


# Per query word: may it have a typo, and its adjacent swaps (computed once per query).
_TERMS = (
    "WITH terms AS MATERIALIZED (SELECT term,"
    f" length(term) BETWEEN {TYPO_MIN_LETTERS} AND {TYPO_MAX_LETTERS} AS typo,"
    " ARRAY(SELECT overlay(term PLACING substr(term, i + 1, 1) || substr(term, i, 1) FROM i FOR 2)"
    " FROM generate_series(1, length(term) - 1) AS i) AS swaps"
    " FROM unnest({terms}::text[]) AS term) "
)
# Every query word starts a word of the row's, or is one edit away from one: levenshtein_less_equal for a missing,
# extra or wrong letter, the swaps for a transposition. The CASE keeps levenshtein off long words (it refuses
# strings over 255 characters) whatever order PostgreSQL evaluates conditions in.
_EVERY_TERM_MATCHES = (
    "NOT EXISTS (SELECT FROM terms WHERE NOT EXISTS ("
    "SELECT FROM unnest(string_to_array(btrim(words), ' ')) AS word WHERE starts_with(word, term)"
    " OR CASE WHEN typo AND abs(length(word) - length(term)) <= 1"
    " THEN levenshtein_less_equal(term, word, 1) <= 1 OR word = ANY(swaps) ELSE false END))"
)


def search(table: str, query: SearchQuery) -> tuple[str, list[Any]]:
    """SELECT doc, total for one page: matches rank first by text relevance, then by distance, then by name.

    Text matches are exact (the text is a substring of name + description, case-insensitively) or, ranked below
    every exact match, word by word: each query word starts a word of the vendor's or, from four letters, is one
    typo away from one.
    """
    params: list[Any] = []

    def param(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    where = ["NOT deleted"]
    order = []
    prefix = ""
    if query.open is not None:
        where.append(f"open = {param(query.open)}")
    text = query.text.replace("\x00", " ").strip()
    if text:
        q, like = param(text), param(_like(text))
        exact = f"search_text ILIKE {like}"
        terms = words(text)
        if 0 < len(terms) <= MAX_QUERY_WORDS:
            prefix = _TERMS.format(terms=param(terms))
            candidates = " OR ".join(f"words LIKE {param(p)}" for p in typo_patterns(max(terms, key=len)))
            where.append(f"({exact} OR (({candidates}) AND {_EVERY_TERM_MATCHES}))")
        else:
            where.append(exact)
        order.append(f"({exact}) DESC")
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
        f"{prefix}SELECT doc, count(*) OVER () AS total FROM {table} WHERE {' AND '.join(where)}"
        f" ORDER BY {', '.join(order)} LIMIT {limit} OFFSET {offset}"
    )
    return sql, params
