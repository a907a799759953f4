"""The event pipeline under test: vendor service -> outbox -> broker -> search sync -> index, plus the final check.

Services run in-process (`start_service`, `SearchSyncHost`) or as real subprocesses (`venta serve ...`) when a test
kills them. `converged()` is the one acceptance check of every fault test: the index equals the vendor table, no
outbox row is pending, and the dead-letter stream holds exactly the messages the test poisoned on purpose.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import grpc

from services.contracts.venta.vendor.v1 import vendor_pb2 as pb
from services.contracts.venta.vendor.v1 import vendor_pb2_grpc
from services.kit.events.envelope import Envelope
from services.search.provider import SearchProvider
from services.search.records import Document, public, record_from_vendor
from tests.support.event_brokers import EventBroker

ROOT = Path(__file__).resolve().parents[2]


def poison_messages() -> list[tuple[str, bytes, dict[str, str]]]:
    """Bad JSON, an unknown type, a schema version nobody knows: (subject, payload, headers) each."""
    good = Envelope(
        type="vendor.created", data={}, timestamp="2025-01-01T00:00:00Z", message_id="x", version=1
    ).model_dump(mode="json", by_alias=True)
    unknown = {**good, "type": "vendor.exploded", "messageId": f"poison-{uuid.uuid4()}"}
    future = {**good, "messageId": f"poison-{uuid.uuid4()}", "version": 99}
    return [
        ("events.vendor.updated", b"{this is not json", {"Nats-Msg-Id": f"poison-{uuid.uuid4()}"}),
        ("events.vendor.exploded", json.dumps(unknown).encode(), {"Nats-Msg-Id": unknown["messageId"]}),
        ("events.vendor.created", json.dumps(future).encode(), {"Nats-Msg-Id": future["messageId"]}),
    ]


async def publish_poison(broker: EventBroker) -> int:
    messages = poison_messages()
    for subject, payload, headers in messages:
        await broker.publish_raw(subject, payload, headers)
    return len(messages)


async def table_records(vendors_url: str) -> dict[str, Document]:
    """The vendor table, as index records (read straight from PostgreSQL, not through the service)."""
    conn = await asyncpg.connect(vendors_url)
    try:
        rows = await conn.fetch("SELECT * FROM vendor")
    finally:
        await conn.close()
    return {
        str(r["id"]): record_from_vendor(
            {
                "id": r["id"],
                "ownerId": str(r["owner_id"]),
                "name": r["name"],
                "description": r["description"],
                "phone": r["phone"],
                "email": r["email"],
                "website": r["website"],
                "open": r["open"],
                "primaryImage": r["primary_image"],
                "lat": r["lat"],
                "long": r["long"],
                "createdAt": r["created_at"],
                "updatedAt": r["updated_at"],
            }
        )
        for r in rows
    }


async def pending_outbox(vendors_url: str) -> int:
    conn = await asyncpg.connect(vendors_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM event_outbox WHERE sent_at IS NULL"))
    finally:
        await conn.close()


async def converged(
    *, provider: SearchProvider, vendors_url: str, broker: EventBroker, dead_letters: int, timeout_s: float = 90.0
) -> dict[str, Document]:
    """Wait until index == table, outbox drained, dead letters == `dead_letters`; fail with the differences."""
    deadline = time.monotonic() + timeout_s
    problems: list[str] = []
    while time.monotonic() < deadline:
        problems = []
        table = await table_records(vendors_url)
        try:
            index = {k: public(v) for k, v in (await provider.documents()).items()}
        except Exception as exc:
            index, problems = {}, [f"index unreadable: {exc}"]
        missing = table.keys() - index.keys()
        extra = index.keys() - table.keys()
        stale = [k for k in table.keys() & index.keys() if table[k] != index[k]]
        if missing or extra or stale:
            problems.append(f"index != table: {len(missing)} missing, {len(extra)} extra, {len(stale)} stale")
            if stale:
                problems.append(f"e.g. table {table[stale[0]]} index {index[stale[0]]}")
        pending = await pending_outbox(vendors_url)
        if pending:
            problems.append(f"{pending} outbox rows pending")
        try:  # on a cluster that just lost a server, the stream may be electing its leader: ask again
            dead = await broker.dead_letter_count()
        except Exception as exc:
            problems.append(f"dead letters unreadable: {exc!r}")
        else:
            if dead != dead_letters:
                problems.append(f"{dead} dead letters, expected {dead_letters}")
        if not problems:
            return table
        await asyncio.sleep(0.5)
    raise AssertionError("; ".join(problems))


UNKNOWN_OUTCOME = frozenset({grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE})


@dataclass
class ChangeDriver:
    """Makes vendor changes over gRPC: creates, updates, open/close, deletes, from several concurrent callers.

    Like a real client, a call whose outcome is unknown (its deadline passed, or the connection broke after it was
    sent: on a loaded machine this happens) is sent again, the same change, and counted in `retried`: updates and
    open/close converge to the same state, a delete answered NOT_FOUND on a retry had committed, a retried create may
    leave a second vendor (which the index must then hold too).
    """

    address: str
    concurrency: int = 8
    done: int = 0
    failed: int = 0
    retried: int = 0
    owned: dict[str, str] = field(default_factory=dict)  # vendor id -> owner

    async def run(self, changes: int, *, tolerate_failures: bool = False) -> None:
        remaining = changes
        async with grpc.aio.insecure_channel(self.address) as channel:
            stub = vendor_pb2_grpc.VendorServiceStub(channel)

            async def worker() -> None:
                nonlocal remaining
                while remaining > 0:
                    remaining -= 1
                    try:
                        await self._one(stub)
                        self.done += 1
                    except grpc.aio.AioRpcError:
                        if not tolerate_failures:
                            raise
                        self.failed += 1
                        remaining += 1
                        await asyncio.sleep(0.2)

            await asyncio.gather(*(worker() for _ in range(self.concurrency)))

    async def _call(self, rpc: Any, request: Any, *, attempts: int = 5, gone_ok: bool = False) -> Any:
        """`rpc(request)`, sent again while its outcome is unknown; `gone_ok`: NOT_FOUND after a retry is success."""
        for attempt in range(attempts):
            try:
                return await rpc(request, timeout=10)
            except grpc.aio.AioRpcError as exc:
                if gone_ok and attempt > 0 and exc.code() == grpc.StatusCode.NOT_FOUND:
                    return None  # the first attempt committed
                if exc.code() not in UNKNOWN_OUTCOME or attempt == attempts - 1:
                    raise
                self.retried += 1
                await asyncio.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")

    async def _one(self, stub: vendor_pb2_grpc.VendorServiceStub) -> None:
        roll = random.random()
        if len(self.owned) < 20 or roll < 0.3:
            owner = str(uuid.uuid4())
            word = random.choice(["Tacos", "Elotes", "Churros", "Tamales", "Tortas", "Café"])
            created = await self._call(
                stub.CreateVendor,
                pb.VendorCreateData(name=f"{word} {uuid.uuid4().hex[:6]}", user_id=owner, description="street food"),
            )
            self.owned[created.id] = owner
            return
        vid = random.choice(list(self.owned))
        owner = self.owned.pop(vid)  # leased: no other worker touches this vendor meanwhile
        keep = True
        try:
            if roll < 0.38:
                keep = False
                await self._call(stub.DeleteVendor, pb.VendorDeleteData(id=vid, user_id=owner), gone_ok=True)
            elif roll < 0.6:
                await self._call(
                    stub.SetVendorOpen, pb.VendorOpenData(id=vid, user_id=owner, open=random.random() < 0.5)
                )
            else:
                await self._call(
                    stub.UpdateVendor,
                    pb.VendorUpdateData(
                        id=vid,
                        user_id=owner,
                        name=f"Renamed {uuid.uuid4().hex[:6]}",
                        description=random.choice(["", "al pastor", "de olla"]),
                    ),
                )
        except grpc.aio.AioRpcError as exc:
            keep = exc.code() != grpc.StatusCode.NOT_FOUND  # a delete that committed before a crash
            raise
        finally:
            if keep:
                self.owned[vid] = owner
