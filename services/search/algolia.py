"""The Algolia provider, through the official `algoliasearch` v4 client.

Algolia has no conditional writes, so a write reads the stored documents (`getObjects`), merges the changes by
version (see `records`), writes the result in one `batch` and waits for that task: the next read then sees it.
Tombstones are records with `syncDeleted: true`, filtered out of every search. A rebuild fills a temporary index,
copies the live index's tombstones into it, and `moveIndex`es it onto the live one, which Algolia does atomically.

The client marks a host down for five minutes after one 5xx (its retry strategy is built for failing over between
Algolia's several hosts); with one configured host that would outlast the outage by minutes, so the provider resets
its hosts before each call and does its own retrying (search sync's backoff).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

from algoliasearch.http.exceptions import AlgoliaUnreachableHostException, RequestException
from algoliasearch.http.hosts import Host, HostsCollection
from algoliasearch.search.client import SearchClient
from algoliasearch.search.config import SearchConfig

from services.search.provider import SearchPage, SearchQuery, SearchUnavailable
from services.search.records import DELETED, Change, Document, Upsert, merge, merge_all, public

T = TypeVar("T")
GET_OBJECTS_MAX = 1000
BATCH_MAX = 1000
SETTINGS: dict[str, Any] = {
    "searchableAttributes": ["name", "description"],
    "attributesForFaceting": ["filterOnly(open)", f"filterOnly({DELETED})"],
    "typoTolerance": True,
    "minWordSizefor1Typo": 4,
    "minWordSizefor2Typos": 8,
    "ranking": ["typo", "geo", "words", "filters", "proximity", "attribute", "exact", "custom"],
}


def parse_hosts(urls: Sequence[str]) -> list[Host]:
    hosts = []
    for url in urls:
        parts = urlsplit(url if "://" in url else f"https://{url}")
        hosts.append(Host(parts.hostname or "", scheme=parts.scheme or "https", port=parts.port))
    return hosts


class AlgoliaSearch:
    name = "algolia"

    def __init__(
        self, *, app_id: str, api_key: str, index: str = "vendor", hosts: Sequence[str] = (), timeout_s: float = 5.0
    ) -> None:
        self.index = index
        config = SearchConfig(app_id, api_key)
        config.read_timeout = config.write_timeout = int(timeout_s * 1000)
        config.connect_timeout = min(2000, int(timeout_s * 1000))
        self._hosts = parse_hosts(hosts)
        if self._hosts:
            config.hosts = HostsCollection(self._hosts)
        self.client = SearchClient.create_with_config(config)

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        for host in self._hosts:
            host.reset()
        try:
            return await call()
        except AlgoliaUnreachableHostException as exc:
            raise SearchUnavailable(f"Algolia unreachable: {exc}") from exc
        except RequestException as exc:
            if exc.status_code is None or exc.status_code >= 500 or exc.status_code == 429:
                raise SearchUnavailable(f"Algolia answered {exc.status_code}: {exc.message}") from exc
            raise
        except (OSError, TimeoutError) as exc:
            raise SearchUnavailable(f"Algolia unreachable: {type(exc).__name__}") from exc

    async def _wait(self, index: str, task_id: int) -> None:
        await self._call(lambda: self.client.wait_for_task(index_name=index, task_id=task_id))

    async def _set_settings(self, index: str) -> None:
        response = await self._call(lambda: self.client.set_settings(index, SETTINGS))
        await self._wait(index, response.task_id)

    async def open(self) -> None:
        await self._set_settings(self.index)

    async def _get(self, ids: Sequence[str]) -> dict[str, Document | None]:
        return await self._get_from(self.index, ids)

    async def _get_from(self, index: str, ids: Sequence[str]) -> dict[str, Document | None]:
        found: dict[str, Document | None] = {}
        for start in range(0, len(ids), GET_OBJECTS_MAX):
            chunk = ids[start : start + GET_OBJECTS_MAX]
            params = {"requests": [{"indexName": index, "objectID": i} for i in chunk]}
            response = await self._call(lambda p=params: self.client.get_objects_with_http_info(p))  # type: ignore[misc]
            results = json.loads(response.raw_data or "{}").get("results", [])
            for object_id, document in zip(chunk, results, strict=False):
                found[object_id] = document
        return found

    async def _write(self, index: str, documents: Sequence[Document]) -> None:
        for start in range(0, len(documents), BATCH_MAX):
            requests = [{"action": "addObject", "body": doc} for doc in documents[start : start + BATCH_MAX]]
            response = await self._call(lambda r=requests: self.client.batch(index, {"requests": r}))  # type: ignore[misc]
            await self._wait(index, response.task_id)

    async def apply(self, changes: Sequence[Change]) -> int:
        if not changes:
            return 0
        current = await self._get(sorted({change.object_id for change in changes}))
        written = merge_all(current, list(changes))
        await self._write(self.index, list(written.values()))
        return len(written)

    async def search(self, query: SearchQuery) -> SearchPage:
        if query.matches_nothing:
            return SearchPage(page=query.page, hits_per_page=query.hits_per_page)
        filters = [f"NOT {DELETED}:true"]
        if query.open is not None:
            filters.append(f"open:{str(query.open).lower()}")
        params: dict[str, Any] = {
            "query": query.text,
            "filters": " AND ".join(filters),
            "page": query.page,
            "hitsPerPage": query.hits_per_page,
            "attributesToHighlight": [],
        }
        if query.around is not None:
            params["aroundLatLng"] = f"{query.around[0]},{query.around[1]}"
            if query.radius_m is not None:
                params["aroundRadius"] = int(query.radius_m)
        response = await self._call(lambda: self.client.search_single_index_with_http_info(self.index, params))
        body = json.loads(response.raw_data or "{}")
        hits = [
            public({k: v for k, v in hit.items() if not k.startswith("_") or k == "_geoloc"})
            for hit in body.get("hits", [])
        ]
        return SearchPage(
            hits=hits,
            total=int(body.get("nbHits", len(hits))),
            page=int(body.get("page", query.page)),
            pages=int(body.get("nbPages", 0)),
            hits_per_page=int(body.get("hitsPerPage", query.hits_per_page)),
        )

    async def documents(self, *, include_deleted: bool = False) -> dict[str, Document]:
        found: dict[str, Document] = {}
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"hitsPerPage": 1000, **({"cursor": cursor} if cursor else {})}
            response = await self._call(lambda p=params: self.client.browse_with_http_info(self.index, p))  # type: ignore[misc]
            body = json.loads(response.raw_data or "{}")
            for hit in body.get("hits", []):
                if include_deleted or not hit.get(DELETED, False):
                    found[hit["objectID"]] = hit
            cursor = body.get("cursor")
            if not cursor:
                return found

    async def rebuild(self, records: AsyncIterator[Upsert]) -> int:
        temporary = f"{self.index}_reindex_{int(time.time() * 1000)}"
        await self._set_settings(temporary)
        count = 0
        chunk: list[Document] = []
        try:
            async for record in records:
                document = merge(None, record)
                assert document is not None
                chunk.append(document)
                count += 1
                if len(chunk) >= BATCH_MAX:
                    await self._write(temporary, chunk)
                    chunk = []
            await self._write(temporary, chunk)
            # tombstones survive the rebuild, so a late redelivery cannot bring a deleted vendor back
            live = await self.documents(include_deleted=True)
            fresh = await self._get_from(temporary, [i for i, doc in live.items() if doc.get(DELETED)])
            await self._write(temporary, [live[i] for i, doc in fresh.items() if doc is None])
            move = {"operation": "move", "destination": self.index}
            response = await self._call(lambda: self.client.operation_index(temporary, move))
            await self._wait(temporary, response.task_id)
        except BaseException:
            with contextlib.suppress(Exception):
                await self._call(lambda: self.client.delete_index(temporary))
            raise
        return count

    async def ping(self) -> None:
        await self._call(lambda: self.client.get_settings(self.index))

    async def close(self) -> None:
        await self.client.close()
