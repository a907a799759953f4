"""The search provider interface: how search sync writes the vendor index and how the gateway queries it.

Writes are `Change`s merged by version (see `records`), so every provider is idempotent and tolerates redelivery
in any order. `rebuild` fills a fresh index and swaps it in atomically: a search sees the old index or the new one,
never an empty or half-built one. `SearchUnavailable` means the engine cannot be reached or refuses service right
now (retry later); any other error is a bug or a bad record.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from services.search.records import Change, Document, Upsert


class SearchUnavailable(ConnectionError):
    """The search engine cannot be used right now; the same call may succeed later."""


MAX_TEXT_BYTES = 512  # Algolia refuses a longer query (UTF-8 bytes)


@dataclass(frozen=True)
class SearchQuery:
    """Text (typo tolerant) and/or around a point (`radius_m` meters), optionally only `open` vendors, paginated."""

    text: str = ""
    lat: float | None = None
    lng: float | None = None
    radius_m: int | None = None
    open: bool | None = None
    page: int = 0
    hits_per_page: int = 20

    def __post_init__(self) -> None:
        if (self.lat is None) != (self.lng is None):
            raise ValueError("give both lat and lng, or neither")
        if self.radius_m is not None and (self.lat is None or self.radius_m <= 0):
            raise ValueError("radius_m needs a point and must be positive")
        if self.page < 0 or not 1 <= self.hits_per_page <= 1000:
            raise ValueError("page must be >= 0 and hits_per_page within 1..1000")

    @property
    def matches_nothing(self) -> bool:
        """Text no vendor can match: longer than `MAX_TEXT_BYTES`, or with no letter or digit.

        Providers answer an empty page without asking their engine: Algolia refuses the first with an error and
        takes the second for an empty query (every record).
        """
        text = self.text.strip()
        too_long = len(self.text.encode(errors="replace")) > MAX_TEXT_BYTES
        return too_long or (bool(text) and not any(c.isalnum() for c in text))

    @property
    def around(self) -> tuple[float, float] | None:
        return (self.lat, self.lng) if self.lat is not None and self.lng is not None else None


@dataclass(frozen=True)
class SearchPage:
    hits: list[Document] = field(default_factory=list)
    total: int = 0
    page: int = 0
    pages: int = 0
    hits_per_page: int = 20


class SearchProvider(Protocol):
    name: str
    index: str

    async def open(self) -> None:
        """Make sure the index exists with its settings (idempotent); SearchUnavailable when unreachable."""
        ...

    async def apply(self, changes: Sequence[Change]) -> int:
        """Merge `changes` (in order) into the index; the number of documents written."""
        ...

    async def search(self, query: SearchQuery) -> SearchPage: ...

    async def documents(self, *, include_deleted: bool = False) -> dict[str, Document]:
        """Every stored document by object id (verification and tests; reads the whole index)."""
        ...

    async def rebuild(self, records: AsyncIterator[Upsert]) -> int:
        """Build a fresh index from `records`, then swap it in atomically; the number of records indexed."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
