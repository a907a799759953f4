"""The bare peers of the gateway's GET vendor: a FastAPI app with two endpoints and nothing else.

What a user would otherwise write by hand, under the same uvicorn as the gateway: no authentication, rate limit,
middleware, metrics or tracing. bench/gateway_read.py measures the gateway beside it:

- `GET /redis/vendors/{id}`: the body the gateway cached for that vendor, straight from Redis (peer of a cache hit);
- `GET /pg/vendors/{id}`: the row from PostgreSQL with asyncpg, as JSON (peer of a cache miss).

Usage: `http_vendor.py --port P --dsn postgresql://... --redis-url redis://... --cache-prefix PREFIX`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import redis.asyncio
import uvicorn
from fastapi import FastAPI, HTTPException, Response

QUERY = "SELECT * FROM vendor WHERE id = $1"


def create_app(dsn: str, redis_url: str, cache_prefix: str, pool_size: int) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size)
        app.state.redis = redis.asyncio.Redis.from_url(redis_url, max_connections=pool_size)
        yield
        await app.state.redis.aclose()
        await app.state.pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/redis/vendors/{vendor_id}")
    async def cached_vendor(vendor_id: uuid.UUID) -> Response:
        body = await app.state.redis.get(cache_prefix + str(vendor_id))
        if body is None:
            raise HTTPException(404)
        return Response(body, media_type="application/json")

    @app.get("/pg/vendors/{vendor_id}")
    async def stored_vendor(vendor_id: uuid.UUID) -> dict[str, Any]:
        row = await app.state.pool.fetchrow(QUERY, vendor_id)
        if row is None:
            raise HTTPException(404)
        return {k: str(v) if isinstance(v, uuid.UUID | dt.datetime) else v for k, v in row.items()}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--cache-prefix", required=True)
    parser.add_argument("--pool-size", type=int, default=32)
    args = parser.parse_args()
    app = create_app(args.dsn, args.redis_url, args.cache_prefix, args.pool_size)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
