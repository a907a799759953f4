"""The vendors the benchmarks read: rows whose ids are computed from a number, written once with COPY.

Why computed ids: every load generator can then name the rows it reads without being handed a list: ghz from a data
file, oha from a URL regex (a random id of a range on every request), pgbench from a random number turned into the id
in SQL. All of them read exactly the same rows. The owner's id is computed from the same number, so a write (which
names its caller, who must be the owner) needs no list either. Seeding is not measured, so it goes straight into the
table.
"""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg

ID_PREFIX = "b3c0a1e2-0000-4000-8000-"  # + 12 hex digits: the vendor's number
OWNER_PREFIX = "0e4e0e4e-0000-4000-8000-"  # + 12 hex digits: the number of the vendor it owns
HEX = "0123456789abcdef"


def vendor_id(n: int) -> str:
    return f"{ID_PREFIX}{n:012x}"


def owner_id(n: int) -> str:
    """The owner of vendor `n` (one vendor per owner)."""
    return f"{OWNER_PREFIX}{n:012x}"


def sql_vendor_id(variable: str) -> str:
    """The SQL expression of `vendor_id(n)` for a pgbench variable (`:n`)."""
    return f"('{ID_PREFIX}' || lpad(to_hex({variable}::int), 12, '0'))::uuid"


def id_regex(start: int, bits: int) -> str:
    """A regex matching exactly the ids of `start <= n < start + 2**bits` (start a multiple of 2**bits)."""
    if start % (1 << bits) or bits < 1:
        raise ValueError("start must be a multiple of 2**bits, bits >= 1")
    digits = (bits + 3) // 4  # hex digits that vary
    lead = HEX[: 1 << (bits - 4 * (digits - 1))]  # values of the first varying digit
    fixed = f"{start:012x}"[: 12 - digits]
    first = int(f"{start:012x}"[12 - digits], 16)
    return f"{ID_PREFIX}{fixed}[{HEX[first : first + len(lead)]}]" + "[0-9a-f]" * (digits - 1)


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
