"""One contract for every search provider (PostgreSQL on a real server, Algolia through its official client against
the HTTP stand-in): records, versioned writes, typo-tolerant text (one typo from four letters, ranked below exact
matches), garbage queries, geo radius, `open`, pagination, atomic rebuild."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.search.provider import SearchProvider, SearchQuery
from services.search.records import MoveTo, Remove, Upsert

BASE_US = 1_700_000_000_000_000
CENTER = (19.4326, -99.1332)  # Mexico City


def vendor(
    name: str,
    *,
    version: int = 1,
    lat: float | None = None,
    lng: float | None = None,
    open_: bool = False,
    description: str | None = None,
    vid: str | None = None,
) -> Upsert:
    record: dict[str, Any] = {
        "objectID": vid or str(uuid.uuid4()),
        "ownerId": str(uuid.uuid4()),
        "name": name,
        "description": description,
        "open": open_,
        "createdAt": "2025-01-01T00:00:00Z",
        "updatedAt": "2025-01-01T00:00:00Z",
    }
    if lat is not None and lng is not None:
        record["_geoloc"] = {"lat": lat, "lng": lng}
    return Upsert(record=record, version=BASE_US + version)


def names(hits: list[dict[str, Any]]) -> list[str]:
    return [hit["name"] for hit in hits]


async def test_records_have_vendor_ids_and_numeric_geoloc(provider: SearchProvider) -> None:
    change = vendor("Tacos El Rey", lat=CENTER[0], lng=CENTER[1])
    assert await provider.apply([change]) == 1
    stored = (await provider.documents())[change.object_id]
    assert stored["objectID"] == change.object_id
    assert stored["_geoloc"] == {"lat": CENTER[0], "lng": CENTER[1]}
    assert all(isinstance(v, float) for v in stored["_geoloc"].values())
    hit = (await provider.search(SearchQuery(text="tacos"))).hits[0]
    assert hit["objectID"] == change.object_id and "syncVersion" not in hit


async def test_writes_are_idempotent_and_ordered_by_version(provider: SearchProvider) -> None:
    vid = str(uuid.uuid4())
    v2 = vendor("Second", version=2, vid=vid)
    assert await provider.apply([v2]) == 1
    assert await provider.apply([v2]) == 0, "the same change twice writes once"
    assert await provider.apply([vendor("First", version=1, vid=vid)]) == 0, "an older change is ignored"
    assert (await provider.documents())[vid]["name"] == "Second"

    assert await provider.apply([MoveTo(vid, 10.0, 20.0, BASE_US + 5)]) == 1
    assert await provider.apply([vendor("Third", version=4, vid=vid, lat=1.0, lng=1.0)]) == 1
    stored = (await provider.documents())[vid]
    assert (stored["name"], stored["_geoloc"]) == ("Third", {"lat": 10.0, "lng": 20.0}), "newer position kept"

    assert await provider.apply([Remove(vid, BASE_US + 6)]) == 1
    assert await provider.apply([vendor("Zombie", version=5, vid=vid)]) == 0, "a deletion is not undone by the past"
    assert vid not in await provider.documents()
    assert (await provider.search(SearchQuery(text="zombie"))).total == 0


async def _typo_vendors(provider: SearchProvider) -> None:
    await provider.apply(
        [
            vendor("Tacos El Rey", description="al pastor"),
            vendor("Burritos Lupita"),
            vendor("Tamales Doña Rosa"),
            vendor("Tacso Loco"),
        ]
    )


async def test_text_search_tolerates_typos_and_ranks_exact_first(provider: SearchProvider) -> None:
    await _typo_vendors(provider)
    assert names((await provider.search(SearchQuery(text="tacos"))).hits)[0] == "Tacos El Rey"
    assert "Tacos El Rey" in names((await provider.search(SearchQuery(text="tacso"))).hits)
    assert "Burritos Lupita" in names((await provider.search(SearchQuery(text="buritos"))).hits)
    assert "Tacos El Rey" in names((await provider.search(SearchQuery(text="pastor"))).hits)
    assert "Tamales Doña Rosa" in names((await provider.search(SearchQuery(text="tamal"))).hits)
    assert (await provider.search(SearchQuery(text="sushi"))).total == 0


# One edit in a word of four letters or more; none of these is a prefix or a substring of a vendor's text.
ONE_TYPO = {
    "tcaos": ["Tacos El Rey"],  # two letters swapped
    "tcos": ["Tacos El Rey"],  # a letter missing
    "taccos": ["Tacos El Rey"],  # a letter too many
    "tavos": ["Tacos El Rey"],  # a wrong letter
    "lcoo": ["Tacso Loco"],  # four letters, two swapped
    "pastro": ["Tacos El Rey"],  # in the description
    "dona": ["Tamales Doña Rosa"],  # ñ for n
    "tcaos rey": ["Tacos El Rey"],  # every word must match, one of them with a typo
    "rey tcaos": ["Tacos El Rey"],
}
NO_MATCH = [
    "psatro",  # two edits (two swaps) in a six-letter word
    "tamxlez",  # two edits (two wrong letters) in a seven-letter word
    "rye",  # one edit in a three-letter word
    "rex",
    "tcaos roy",  # one word of two does not match
]


async def test_one_typo_in_a_word_of_four_letters_or_more_finds_the_vendor(provider: SearchProvider) -> None:
    await _typo_vendors(provider)
    found = {text: names((await provider.search(SearchQuery(text=text))).hits) for text in ONE_TYPO}
    assert found == ONE_TYPO


async def test_no_match_for_two_typos_or_a_typo_in_a_short_word(provider: SearchProvider) -> None:
    await _typo_vendors(provider)
    found = {text: names((await provider.search(SearchQuery(text=text))).hits) for text in NO_MATCH}
    assert found == {text: [] for text in NO_MATCH}


async def test_exact_matches_rank_above_typo_matches(provider: SearchProvider) -> None:
    await _typo_vendors(provider)
    assert names((await provider.search(SearchQuery(text="tacos"))).hits) == ["Tacos El Rey", "Tacso Loco"]
    assert names((await provider.search(SearchQuery(text="tacso"))).hits) == ["Tacso Loco", "Tacos El Rey"]
    lat, lng = CENTER
    near_typo, far_exact = vendor("Tacos Near", lat=lat, lng=lng), vendor("Tacso Far", lat=lat + 0.5, lng=lng)
    await provider.apply([near_typo, far_exact])
    around = await provider.search(SearchQuery(text="tacso", lat=lat, lng=lng))
    assert names(around.hits) == ["Tacso Far", "Tacos Near"], "text relevance before distance"


GARBAGE = [
    "x" * 500,
    "tacos " * 100,  # over 512 bytes: Algolia refuses it, so it matches nothing anywhere
    "🌮" * 200,
    "!!!",
    "...",
    "%",
    "_",
    "%_%",
    "\\",
    "'",
    "--",
    "'; DROP TABLE search_vendor; --",
    "' OR '1'='1",
    "\x00",
    "🌮",
    "タコス",
    "Ωμέγα",
    "\u200f\u200e",
]


async def test_garbage_queries_find_nothing_and_break_nothing(provider: SearchProvider) -> None:
    await _typo_vendors(provider)
    for text in GARBAGE:
        page = await provider.search(SearchQuery(text=text))
        assert (page.hits, page.total, page.pages) == ([], 0, 0), text[:40]
    assert names((await provider.search(SearchQuery(text="tacos"))).hits)[0] == "Tacos El Rey"


async def test_around_a_point_with_radius_and_open_filter(provider: SearchProvider) -> None:
    lat, lng = CENTER
    await provider.apply(
        [
            vendor("Near Open", lat=lat + 0.004, lng=lng, open_=True),  # ~450 m
            vendor("Near Closed", lat=lat, lng=lng + 0.003),  # ~315 m
            vendor("Far Open", lat=lat + 0.05, lng=lng, open_=True),  # ~5.5 km
            vendor("Nowhere"),
        ]
    )
    near = await provider.search(SearchQuery(lat=lat, lng=lng, radius_m=1000))
    assert names(near.hits) == ["Near Closed", "Near Open"]
    everything = await provider.search(SearchQuery(lat=lat, lng=lng))
    assert names(everything.hits) == ["Near Closed", "Near Open", "Far Open"], "sorted by distance"
    assert names((await provider.search(SearchQuery(lat=lat, lng=lng, radius_m=1000, open=True))).hits) == ["Near Open"]
    assert sorted(names((await provider.search(SearchQuery(open=False))).hits)) == ["Near Closed", "Nowhere"]


async def test_pagination(provider: SearchProvider) -> None:
    await provider.apply([vendor(f"Elote stand {i:02d}") for i in range(25)])
    seen = []
    for page in range(3):
        result = await provider.search(SearchQuery(text="elote", page=page, hits_per_page=10))
        assert (result.total, result.pages, result.page) == (25, 3, page)
        seen += names(result.hits)
    assert len(seen) == 25 == len(set(seen))
    assert (await provider.search(SearchQuery(text="elote", page=3, hits_per_page=10))).hits == []


async def test_rebuild_swaps_atomically(provider: SearchProvider) -> None:
    old = [vendor(f"Old churros {i}") for i in range(30)]
    await provider.apply(old)
    gone = vendor("Deleted churros", version=1)
    await provider.apply([gone, Remove(gone.object_id, BASE_US + 2)])
    during: list[int] = []

    async def records() -> AsyncIterator[Upsert]:
        for i in range(1500):
            if i % 500 == 250:
                await asyncio.sleep(0)
                during.append((await provider.search(SearchQuery(text="churros", hits_per_page=50))).total)
            yield vendor(f"New churros {i}")

    assert await provider.rebuild(records()) == 1500
    assert during == [30, 30, 30], "searches see the old index, complete, while the new one is built"
    after = await provider.search(SearchQuery(text="churros", hits_per_page=5))
    assert after.total == 1500 and all(n.startswith("New") for n in names(after.hits))
    assert await provider.apply([vendor("Resurrected", version=1, vid=gone.object_id)]) == 0, "tombstones survive"


def test_query_validation() -> None:
    with pytest.raises(ValueError):
        SearchQuery(lat=1.0)
    with pytest.raises(ValueError):
        SearchQuery(radius_m=10)
    with pytest.raises(ValueError):
        SearchQuery(hits_per_page=0)


def test_merge_tolerates_versions_that_are_not_timestamps() -> None:
    from services.search.records import merge

    stored = merge(None, vendor("Any"))
    moved = merge(stored, MoveTo(str(stored["objectID"]), 1.0, 2.0, 2**62)) if stored else None
    assert moved is not None and moved["_geoloc"] == {"lat": 1.0, "lng": 2.0}
