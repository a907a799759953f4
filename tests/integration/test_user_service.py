"""The user service over real gRPC: idempotent webhooks, subscriptions, GetUserVendors through the vendor service."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from services.contracts.venta.user.v1 import user_pb2 as pb
from services.contracts.venta.user.v1 import user_pb2_grpc
from services.contracts.venta.vendor.v1 import vendor_pb2, vendor_pb2_grpc
from services.devkit.pytest_plugin import ServiceFactory
from services.devkit.servers import Postgres
from services.kit.grpc.server import GrpcServiceHost
from services.users import app as users_app
from services.users.config import UserSettings
from tests.support.databases import connect_to_database_of, row_count
from tests.support.revenuecat import published_changes, stored_subscription

Stub = user_pb2_grpc.UserServiceStub
START_MS = 1_760_000_000_000
DAY_MS = 86_400_000


def clerk_id() -> str:
    return f"user_{uuid.uuid4().hex}"


def lifecycle_event(cid: str, kind: str, *, at_ms: int, days: int = 30, **fields: Any) -> pb.SubscriptionEvent:
    """A valid HandleSubscriptionEvent request (a period of `days` from `at_ms`), with `fields` on top."""
    values: dict[str, Any] = {
        "clerk_user_id": cid,
        "event_id": f"evt_{uuid.uuid4().hex}",
        "type": pb.SubscriptionEventType.Value(f"SUBSCRIPTION_EVENT_TYPE_{kind}"),
        "event_timestamp_ms": at_ms,
        "product_id": "pro_monthly",
        "purchased_at_ms": at_ms,
        "expiration_at_ms": at_ms + days * DAY_MS,
        "transaction_id": f"tx_{uuid.uuid4().hex[:8]}",
    }
    return pb.SubscriptionEvent(**(values | fields))


async def test_clerk_user_created_twice_is_one_user(users: Stub) -> None:
    cid = clerk_id()
    assert (await users.HandleClerkUserCreated(pb.ClerkUserData(id=cid))).message == "User created"
    assert (await users.HandleClerkUserCreated(pb.ClerkUserData(id=cid))).message == "User already exists"
    user = await users.GetUserByClerkId(pb.GetUserByClerkIdRequest(clerk_id=cid))
    assert user.clerk_id == cid and uuid.UUID(user.id) and user.subscription_status == "Inactive"


async def test_clerk_user_deleted(users: Stub) -> None:
    cid = clerk_id()
    await users.HandleClerkUserCreated(pb.ClerkUserData(id=cid))
    assert (await users.HandleClerkUserDeleted(pb.ClerkUserData(id=cid))).message == "User deleted"
    assert (await users.HandleClerkUserDeleted(pb.ClerkUserData(id=cid))).message == "User already deleted"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await users.GetUserByClerkId(pb.GetUserByClerkIdRequest(clerk_id=cid))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_subscription_activates_once_per_transaction(users: Stub) -> None:
    cid = clerk_id()
    await users.HandleClerkUserCreated(pb.ClerkUserData(id=cid))
    request = pb.RevenueCatSubscriptionData(
        clerk_user_id=cid,
        provider_id="pro_monthly",
        data=pb.RevenueCatProviderData(transaction_id="tx-1", event_id="ev-1", product_id="pro_monthly"),
    )
    assert (await users.HandleSubscriptionCreated(request)).message == "Subscription created"
    assert (await users.HandleSubscriptionCreated(request)).message == "Subscription already recorded"
    user = await users.GetUserByClerkId(pb.GetUserByClerkIdRequest(clerk_id=cid))
    assert user.subscription_status == "Active"


async def test_subscription_for_unknown_user_is_not_found(users: Stub) -> None:
    request = pb.RevenueCatSubscriptionData(
        clerk_user_id=clerk_id(), provider_id="p", data=pb.RevenueCatProviderData(transaction_id="t")
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await users.HandleSubscriptionCreated(request)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_lifecycle_events_apply_newest_first_only(users: Stub) -> None:
    cid = clerk_id()
    await users.HandleClerkUserCreated(pb.ClerkUserData(id=cid))
    purchase = lifecycle_event(cid, "INITIAL_PURCHASE", at_ms=START_MS)
    answer = await users.HandleSubscriptionEvent(purchase)
    assert (answer.applied, answer.status) == (True, "Active")
    issue = lifecycle_event(cid, "BILLING_ISSUE", at_ms=START_MS + 30 * DAY_MS)
    assert (await users.HandleSubscriptionEvent(issue)).status == "BillingIssue"
    user = await users.GetUserByClerkId(pb.GetUserByClerkIdRequest(clerk_id=cid))
    assert user.subscription_status == "BillingIssue"
    for again in (issue, purchase):
        answer = await users.HandleSubscriptionEvent(again)
        assert (answer.applied, answer.status) == (False, "BillingIssue")


async def test_the_original_purchase_call_never_undoes_a_lifecycle_event(users: Stub) -> None:
    cid = clerk_id()
    await users.HandleClerkUserCreated(pb.ClerkUserData(id=cid))
    await users.HandleSubscriptionEvent(lifecycle_event(cid, "EXPIRATION", at_ms=START_MS))
    request = pb.RevenueCatSubscriptionData(
        clerk_user_id=cid, provider_id="pro_monthly", data=pb.RevenueCatProviderData(transaction_id="tx-late")
    )
    assert (await users.HandleSubscriptionCreated(request)).message == "Subscription created"  # recorded...
    user = await users.GetUserByClerkId(pb.GetUserByClerkIdRequest(clerk_id=cid))
    assert user.subscription_status == "Inactive"  # ...but unordered, so it cannot reactivate


async def test_a_user_without_a_subscription_row_gets_one(users: Stub, users_host: GrpcServiceHost) -> None:
    cid = clerk_id()
    await users.HandleClerkUserCreated(pb.ClerkUserData(id=cid))
    conn = await connect_to_database_of(users_host)  # as for a user created before subscriptions came with users
    try:
        await conn.execute(
            'DELETE FROM user_subscription WHERE user_id = (SELECT id FROM "user" WHERE clerk_id = $1)', cid
        )
    finally:
        await conn.close()
    renewals = [lifecycle_event(cid, "RENEWAL", at_ms=START_MS) for _ in range(5)]
    answers = await asyncio.gather(*(users.HandleSubscriptionEvent(event) for event in renewals))
    assert all(answer.status == "Active" for answer in answers)
    row = await stored_subscription(users_host, cid)
    assert row["last_event_id"] == max(event.event_id for event in renewals)  # equal times: the greatest id


@pytest.mark.parametrize("seed", [1, 2])
async def test_concurrent_lifecycle_events_serialize(users: Stub, users_host: GrpcServiceHost, seed: int) -> None:
    """Every event three times, all at once: without the row lock, two calls read the same state and the older write
    can land last (this fails most runs when the lock is removed)."""
    cid = clerk_id()
    await users.HandleClerkUserCreated(pb.ClerkUserData(id=cid))
    kinds = ["RENEWAL", "CANCELLATION", "UNCANCELLATION", "BILLING_ISSUE", "PRODUCT_CHANGE", "EXPIRATION"]
    events = [lifecycle_event(cid, kinds[i % len(kinds)], at_ms=START_MS + i, product_id=f"p{i}") for i in range(60)]
    calls = [event for event in events for _ in range(3)]
    random.Random(seed).shuffle(calls)
    answers = await asyncio.gather(*(users.HandleSubscriptionEvent(event) for event in calls))
    row = await stored_subscription(users_host, cid)
    assert (row["last_event_id"], row["product_id"]) == (events[-1].event_id, "p59")
    changes = await published_changes(users_host, cid)
    assert len(changes) == sum(answer.applied for answer in answers)  # one event per applied change, none otherwise
    stamps = [change["timestamp"] for change in changes]
    assert stamps == sorted(set(stamps)), "each applied event was newer than the one applied before it"


async def test_user_vendors_come_from_the_vendor_service(
    users: Stub, vendors: vendor_pb2_grpc.VendorServiceStub
) -> None:
    cid = clerk_id()
    await users.HandleClerkUserCreated(pb.ClerkUserData(id=cid))
    user = await users.GetUserByClerkId(pb.GetUserByClerkIdRequest(clerk_id=cid))
    made = [(await vendors.CreateVendor(vendor_pb2.VendorCreateData(name=n, user_id=user.id))).id for n in ("A", "B")]
    await vendors.CreateVendor(vendor_pb2.VendorCreateData(name="other", user_id=str(uuid.uuid4())))
    got = await users.GetUserVendors(pb.UserVendorRequest(user_id=user.id))
    assert [(v.id, v.name) for v in got.vendors] == list(zip(made, ["A", "B"], strict=True))


async def test_vendor_service_down_fails_fast_with_unavailable(
    start_service: ServiceFactory, postgres: Postgres
) -> None:
    from services.devkit.servers import free_port

    host = await start_service(
        users_app.build,
        UserSettings,
        migrations=users_app.MIGRATIONS,
        postgres=postgres,
        vendors_addr=f"127.0.0.1:{free_port()}",
        breaker_fail_max=2,
        grpc_timeout_s=1.0,
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.grpc_port}") as channel:
        stub = user_pb2_grpc.UserServiceStub(channel)
        cid = clerk_id()
        await stub.HandleClerkUserCreated(pb.ClerkUserData(id=cid))
        user = await stub.GetUserByClerkId(pb.GetUserByClerkIdRequest(clerk_id=cid))
        for _ in range(4):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.GetUserVendors(pb.UserVendorRequest(user_id=user.id), timeout=5)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "circuit open" in caught.value.details()  # the breaker answers without trying the peer


INVALID: list[tuple[str, Callable[[Stub], Awaitable[Any]], str]] = [
    ("created: empty id", lambda s: s.HandleClerkUserCreated(pb.ClerkUserData(id="")), "id"),
    ("created: oversized id", lambda s: s.HandleClerkUserCreated(pb.ClerkUserData(id="u" * 500)), "id"),
    ("created: bad chars", lambda s: s.HandleClerkUserCreated(pb.ClerkUserData(id="user 1; drop")), "id"),
    ("deleted: empty id", lambda s: s.HandleClerkUserDeleted(pb.ClerkUserData()), "id"),
    (
        "subscription: no clerk id",
        lambda s: s.HandleSubscriptionCreated(
            pb.RevenueCatSubscriptionData(provider_id="p", data=pb.RevenueCatProviderData(transaction_id="t"))
        ),
        "clerk_user_id",
    ),
    (
        "subscription: no provider",
        lambda s: s.HandleSubscriptionCreated(
            pb.RevenueCatSubscriptionData(clerk_user_id="user_1", data=pb.RevenueCatProviderData(transaction_id="t"))
        ),
        "provider_id",
    ),
    (
        "subscription: no data",
        lambda s: s.HandleSubscriptionCreated(pb.RevenueCatSubscriptionData(clerk_user_id="user_1", provider_id="p")),
        "data",
    ),
    (
        "subscription: no transaction",
        lambda s: s.HandleSubscriptionCreated(
            pb.RevenueCatSubscriptionData(clerk_user_id="user_1", provider_id="p", data=pb.RevenueCatProviderData())
        ),
        "data.transaction_id",
    ),
    (
        "subscription: oversized provider",
        lambda s: s.HandleSubscriptionCreated(
            pb.RevenueCatSubscriptionData(
                clerk_user_id="user_1", provider_id="p" * 300, data=pb.RevenueCatProviderData(transaction_id="t")
            )
        ),
        "provider_id",
    ),
    (
        "lifecycle: no type",
        lambda s: s.HandleSubscriptionEvent(lifecycle_event("user_1", "RENEWAL", at_ms=START_MS, type=0)),
        "type",
    ),
    (
        "lifecycle: unknown type",
        lambda s: s.HandleSubscriptionEvent(lifecycle_event("user_1", "RENEWAL", at_ms=START_MS, type=99)),
        "type",
    ),
    (
        "lifecycle: no clerk id",
        lambda s: s.HandleSubscriptionEvent(lifecycle_event("", "RENEWAL", at_ms=START_MS)),
        "clerk_user_id",
    ),
    (
        "lifecycle: no event id",
        lambda s: s.HandleSubscriptionEvent(lifecycle_event("user_1", "RENEWAL", at_ms=START_MS, event_id="")),
        "event_id",
    ),
    (
        "lifecycle: no timestamp",
        lambda s: s.HandleSubscriptionEvent(lifecycle_event("user_1", "RENEWAL", at_ms=START_MS, event_timestamp_ms=0)),
        "event_timestamp_ms",
    ),
    (
        "lifecycle: negative timestamp",
        lambda s: s.HandleSubscriptionEvent(
            lifecycle_event("user_1", "RENEWAL", at_ms=START_MS, event_timestamp_ms=-1)
        ),
        "event_timestamp_ms",
    ),
    (
        "lifecycle: timestamp past 9999",
        lambda s: s.HandleSubscriptionEvent(
            lifecycle_event("user_1", "RENEWAL", at_ms=START_MS, event_timestamp_ms=2**62)
        ),
        "event_timestamp_ms",
    ),
    (
        "lifecycle: no product",
        lambda s: s.HandleSubscriptionEvent(lifecycle_event("user_1", "RENEWAL", at_ms=START_MS, product_id="")),
        "product_id",
    ),
    (
        "lifecycle: no purchase time",
        lambda s: s.HandleSubscriptionEvent(lifecycle_event("user_1", "RENEWAL", at_ms=START_MS, purchased_at_ms=0)),
        "purchased_at_ms",
    ),
    (
        "lifecycle: expires before purchase",
        lambda s: s.HandleSubscriptionEvent(
            lifecycle_event("user_1", "RENEWAL", at_ms=START_MS, expiration_at_ms=START_MS - 1)
        ),
        "expiration_at_ms",
    ),
    (
        "lifecycle: purchase without transaction",
        lambda s: s.HandleSubscriptionEvent(
            lifecycle_event("user_1", "INITIAL_PURCHASE", at_ms=START_MS, transaction_id="")
        ),
        "transaction_id",
    ),
    (
        "lifecycle: oversized new product",
        lambda s: s.HandleSubscriptionEvent(
            lifecycle_event("user_1", "PRODUCT_CHANGE", at_ms=START_MS, new_product_id="p" * 300)
        ),
        "new_product_id",
    ),
    ("vendors: bad uuid", lambda s: s.GetUserVendors(pb.UserVendorRequest(user_id="abc")), "user_id"),
    ("vendors: missing", lambda s: s.GetUserVendors(pb.UserVendorRequest()), "user_id"),
    ("by clerk: empty", lambda s: s.GetUserByClerkId(pb.GetUserByClerkIdRequest()), "clerk_id"),
]


@pytest.mark.parametrize(("case", "call", "field"), INVALID, ids=[c[0] for c in INVALID])
async def test_invalid_input_is_rejected_naming_the_field(
    users: Stub, users_host: GrpcServiceHost, case: str, call: Callable[[Stub], Awaitable[Any]], field: str
) -> None:
    await users.HandleClerkUserCreated(pb.ClerkUserData(id="user_1"))
    before = {t: await row_count(users_host, t) for t in ("user", "integration", "user_subscription")}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(users)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (case, caught.value.details())
    assert dict(caught.value.trailing_metadata() or ())["venta-field"] == field
    assert {t: await row_count(users_host, t) for t in before} == before
