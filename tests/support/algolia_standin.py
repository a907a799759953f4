"""A real HTTP server speaking the subset of Algolia's REST API that the official client uses here.

Algolia cannot be reached from the test machines, so the provider's official `algoliasearch` client is pointed at
this server (it lets the hosts be configured). It keeps indices in memory and implements batch writes, getObjects,
settings, tasks (always published), move/copy, browse, delete and a small search engine with Algolia's rules that
the contract relies on: typo tolerance (1 typo from 4 letters, 2 from 8), prefix match on the last word, geo
filtering by `aroundLatLng`/`aroundRadius`, `filters` with `attr:value`, `NOT` and `AND`, ranking by typos, then
geo distance, then attribute (name before description), a query without words matching everything and one over
512 bytes refused with a 400. `failing = True` answers 503 to everything (outages).
"""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any

from aiohttp import web

Doc = dict[str, Any]
QUERY_MAX_BYTES = 512


def _distance(a: str, b: str) -> int:
    """Damerau-Levenshtein (optimal string alignment) distance."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def _words(text: str | None) -> list[str]:
    return re.findall(r"\w+", (text or "").lower())


def _word_typos(query_word: str, words: list[str], *, prefix: bool) -> int | None:
    allowed = 2 if len(query_word) >= 8 else 1 if len(query_word) >= 4 else 0
    best: int | None = None
    for word in words:
        candidates = [word] + ([word[: len(query_word)]] if prefix and len(word) > len(query_word) else [])
        for candidate in candidates:
            typos = _distance(query_word, candidate)
            if typos <= allowed and (best is None or typos < best):
                best = typos
    return best


def _match(query: str, doc: Doc) -> tuple[int, int] | None:
    """(typos, attribute rank) when every query word matches, else None."""
    words = _words(query)
    if not words:
        return (0, 0)
    total, in_name = 0, True
    for index, word in enumerate(words):
        prefix = index == len(words) - 1
        name_typos = _word_typos(word, _words(doc.get("name")), prefix=prefix)
        desc_typos = _word_typos(word, _words(doc.get("description")), prefix=prefix)
        options = [t for t in (name_typos, desc_typos) if t is not None]
        if not options:
            return None
        total += min(options)
        in_name = in_name and name_typos is not None and name_typos == min(options)
    return total, 0 if in_name else 1


def _haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6_371_008.8 * 2 * math.asin(math.sqrt(a))


def _filter(expression: str) -> Any:
    clauses = [c.strip() for c in expression.split(" AND ") if c.strip()]

    def accept(doc: Doc) -> bool:
        for clause in clauses:
            negate = clause.startswith("NOT ")
            attribute, _, value = clause.removeprefix("NOT ").partition(":")
            actual = doc.get(attribute)
            matches = str(actual).lower() == value.lower() if actual is not None else False
            if matches == negate:
                return False
        return True

    return accept


class AlgoliaStandIn:
    def __init__(self) -> None:
        self.indexes: dict[str, dict[str, Any]] = {}
        self.failing = False
        self.requests = 0
        self.writes = 0
        self._task = 0
        self.app = web.Application(middlewares=[self._gate], client_max_size=64 * 1024 * 1024)
        r = self.app.router
        r.add_post("/1/indexes/*/objects", self.get_objects)
        r.add_post("/1/indexes/{index}/batch", self.batch)
        r.add_post("/1/indexes/{index}/query", self.query)
        r.add_post("/1/indexes/{index}/browse", self.browse)
        r.add_post("/1/indexes/{index}/operation", self.operation)
        r.add_put("/1/indexes/{index}/settings", self.set_settings)
        r.add_get("/1/indexes/{index}/settings", self.get_settings)
        r.add_get("/1/indexes/{index}/task/{task}", self.task)
        r.add_delete("/1/indexes/{index}", self.delete_index)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @web.middleware
    async def _gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests += 1
        if self.failing:
            return web.json_response({"message": "Service Unavailable", "status": 503}, status=503)
        if not request.headers.get("x-algolia-api-key") or not request.headers.get("x-algolia-application-id"):
            return web.json_response({"message": "Invalid credentials", "status": 403}, status=403)
        response: web.StreamResponse = await handler(request)
        return response

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- helpers ----------------------------------------------------------------------------------------------
    def _index(self, name: str, *, create: bool = True) -> dict[str, Any]:
        if name not in self.indexes and create:
            self.indexes[name] = {"settings": {}, "objects": {}}
        return self.indexes[name]

    def _next_task(self) -> int:
        self._task += 1
        return self._task

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        raw = await request.text()
        body = json.loads(raw) if raw else {}
        if "params" in body and isinstance(body["params"], str):  # the URL-encoded form older clients send
            from urllib.parse import parse_qsl

            body.update(dict(parse_qsl(body.pop("params"))))
        return body

    # ---- routes -----------------------------------------------------------------------------------------------
    async def get_objects(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        results = []
        for item in body.get("requests", []):
            index = self.indexes.get(item["indexName"], {"objects": {}})
            results.append(index["objects"].get(item["objectID"]))
        return web.json_response({"results": results})

    async def batch(self, request: web.Request) -> web.Response:
        index = self._index(request.match_info["index"])
        body = await self._body(request)
        ids = []
        for item in body.get("requests", []):
            action, doc = item["action"], dict(item.get("body") or {})
            object_id = str(doc.get("objectID"))
            if action in ("addObject", "updateObject"):
                index["objects"][object_id] = doc
            elif action in ("partialUpdateObject", "partialUpdateObjectNoCreate"):
                if object_id in index["objects"] or action == "partialUpdateObject":
                    index["objects"][object_id] = {**index["objects"].get(object_id, {}), **doc}
            elif action == "deleteObject":
                index["objects"].pop(object_id, None)
            else:
                return web.json_response({"message": f"unknown action {action}", "status": 400}, status=400)
            ids.append(object_id)
            self.writes += 1
        return web.json_response({"taskID": self._next_task(), "objectIDs": ids})

    async def query(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        name = request.match_info["index"]
        body = await self._body(request)
        if len(str(body.get("query", "")).encode()) > QUERY_MAX_BYTES:
            return web.json_response({"message": "Query is too long (512 bytes maximum)", "status": 400}, status=400)
        objects = self.indexes.get(name, {"objects": {}})["objects"]
        accept = _filter(str(body.get("filters", "")))
        around = body.get("aroundLatLng")
        radius = body.get("aroundRadius")
        point = tuple(float(x) for x in str(around).split(",")) if around else None
        ranked = []
        for doc in objects.values():
            if not accept(doc):
                continue
            matched = _match(str(body.get("query", "")), doc)
            if matched is None:
                continue
            distance = 0.0
            if point is not None:
                geo = doc.get("_geoloc")
                if not isinstance(geo, dict):
                    continue
                distance = _haversine_m(point[0], point[1], geo["lat"], geo["lng"])
                if radius not in (None, "all") and distance > float(radius):
                    continue
            ranked.append(((matched[0], round(distance), matched[1], str(doc.get("name", ""))), doc))
        ranked.sort(key=lambda pair: pair[0])
        per_page = int(body.get("hitsPerPage", 20))
        page = int(body.get("page", 0))
        hits = [doc for _, doc in ranked[page * per_page : (page + 1) * per_page]]
        return web.json_response(
            {
                "hits": hits,
                "nbHits": len(ranked),
                "page": page,
                "nbPages": -(-len(ranked) // per_page),
                "hitsPerPage": per_page,
                "processingTimeMS": int((time.perf_counter() - started) * 1000),
                "query": body.get("query", ""),
                "params": "",
                "exhaustiveNbHits": True,
            }
        )

    async def browse(self, request: web.Request) -> web.Response:
        name = request.match_info["index"]
        body = await self._body(request)
        objects = list(self.indexes.get(name, {"objects": {}})["objects"].values())
        per_page = int(body.get("hitsPerPage", 1000))
        start = int(body.get("cursor") or 0)
        page = objects[start : start + per_page]
        answer: dict[str, Any] = {
            "hits": page,
            "nbHits": len(objects),
            "page": 0,
            "nbPages": 1,
            "hitsPerPage": per_page,
            "processingTimeMS": 1,
            "query": "",
            "params": "",
        }
        if start + per_page < len(objects):
            answer["cursor"] = str(start + per_page)
        return web.json_response(answer)

    async def operation(self, request: web.Request) -> web.Response:
        source = request.match_info["index"]
        body = await self._body(request)
        destination = body["destination"]
        if source in self.indexes:
            copied = json.loads(json.dumps(self.indexes[source]))
            self.indexes[destination] = copied
            if body["operation"] == "move":
                del self.indexes[source]
        return web.json_response({"taskID": self._next_task(), "updatedAt": "2025-01-01T00:00:00.000Z"})

    async def set_settings(self, request: web.Request) -> web.Response:
        self._index(request.match_info["index"])["settings"] = await self._body(request)
        return web.json_response({"taskID": self._next_task(), "updatedAt": "2025-01-01T00:00:00.000Z"})

    async def get_settings(self, request: web.Request) -> web.Response:
        name = request.match_info["index"]
        if name not in self.indexes:
            return web.json_response({"message": "Index does not exist", "status": 404}, status=404)
        return web.json_response(self.indexes[name]["settings"])

    async def task(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "published", "pendingTask": False})

    async def delete_index(self, request: web.Request) -> web.Response:
        self.indexes.pop(request.match_info["index"], None)
        return web.json_response({"taskID": self._next_task(), "deletedAt": "2025-01-01T00:00:00.000Z"})
