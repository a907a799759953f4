"""The user service over real gRPC: idempotent webhooks, subscriptions, GetUserVendors through the vendor service."""

from __future__ import annotations

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
from tests.support.databases import row_count

Stub = user_pb2_grpc.UserServiceStub


def clerk_id() -> str:
    return f"user_{uuid.uuid4().hex}"


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
