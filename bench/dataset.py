"""The vendors the benchmarks read: rows whose ids are computed from a number, written once with COPY.

Why computed ids: every load generator can then name the rows it reads without being handed a list: ghz from a data
file, vegeta from a file of URLs (a random id of a range in each), pgbench from a random number turned into the id
in SQL. All of them read exactly the same rows. The owner's id is computed from the same number, so a write (which
names its caller, who must be the owner) needs no list either. Seeding is not measured, so it goes straight into the
table.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid

import asyncpg

ID_PREFIX = "b3c0a1e2-0000-4000-8000-"  # + 12 hex digits: the vendor's number
OWNER_PREFIX = "0e4e0e4e-0000-4000-8000-"  # + 12 hex digits: the number of the vendor it owns


def vendor_id(n: int) -> str:
    return f"{ID_PREFIX}{n:012x}"


def owner_id(n: int) -> str:
    """The owner of vendor `n` (one vendor per owner)."""
    return f"{OWNER_PREFIX}{n:012x}"


def sql_vendor_id(variable: str) -> str:
    """The SQL expression of `vendor_id(n)` for a pgbench variable (`:n`)."""
    return f"('{ID_PREFIX}' || lpad(to_hex({variable}::int), 12, '0'))::uuid"


def random_ids(numbers: range, draws: int, rng: random.Random) -> list[str]:
    """`draws` vendor ids, each of a number drawn at random from `numbers` (with repeats)."""
    return [vendor_id(n) for n in rng.choices(numbers, k=draws)]


async def seed(dsn: str, numbers: range) -> None:
    """One vendor per number, with every optional field set (a full row, as a real vendor page reads)."""
    now = dt.datetime.now(dt.UTC)
    rows = (
        (
            uuid.UUID(vendor_id(n)),
            uuid.UUID(owner_id(n)),
            f"Vendor {n}",
            f"Street food stand number {n}, open most days",
            f"+49 30 {n:07d}",
            f"vendor{n}@example.com",
            f"https://vendor{n}.example.com",
            f"https://images.example.com/vendors/{n}.jpg",
            n % 2 == 0,
            52.52 + (n % 1000) / 10000,
            13.40 + (n // 1000 % 1000) / 10000,
            now,
            now,
        )
        for n in numbers
    )
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "vendor",
            records=rows,
            columns=[
                "id",
                "owner_id",
                "name",
                "description",
                "phone",
                "email",
                "website",
                "primary_image",
                "open",
                "lat",
                "long",
                "created_at",
                "updated_at",
            ],
        )
        await conn.execute("ANALYZE vendor")
    finally:
        await conn.close()
