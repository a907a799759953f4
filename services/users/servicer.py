"""The UserService gRPC edge. GetUserVendors asks the vendor service (its owner of record) over gRPC."""

from __future__ import annotations

import re

from services.contracts.venta.user.v1 import user_pb2 as pb
from services.contracts.venta.user.v1 import user_pb2_grpc
from services.contracts.venta.vendor.v1 import vendor_pb2, vendor_pb2_grpc
from services.kit.db.session import Database
from services.kit.errors import InvalidArgument
from services.kit.events.outbox import Outbox
from services.kit.grpc import Context
from services.kit.grpc.client import PeerClient
from services.kit.validation import parse_uuid
from services.users import repository

CLERK_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
MAX_PROVIDER_FIELD = 256


def _clerk_id(field: str, value: str) -> str:
    if not value:
        raise InvalidArgument(field, "is required")
    if not CLERK_ID.match(value):
        raise InvalidArgument(field, "must be 1-128 letters, digits, '_' or '-'")
    return value


def _provider_field(field: str, value: str, *, required: bool) -> str:
    if required and not value:
        raise InvalidArgument(field, "is required")
    if len(value) > MAX_PROVIDER_FIELD:
        raise InvalidArgument(field, f"must be at most {MAX_PROVIDER_FIELD} characters")
    return value


class UserServicer(user_pb2_grpc.UserServiceServicer):
    def __init__(
        self, db: Database, vendors: PeerClient[vendor_pb2_grpc.VendorServiceAsyncStub], outbox: Outbox
    ) -> None:
        self.db = db
        self.vendors = vendors
        self.outbox = outbox

    async def HandleClerkUserCreated(self, request: pb.ClerkUserData, context: Context) -> pb.ClerkWebhookResponse:
        clerk_id = _clerk_id("id", request.id)
        async with self.db.session() as session:
            _, created = await repository.create_from_clerk(session, clerk_id=clerk_id, outbox=self.outbox)
        return pb.ClerkWebhookResponse(message="User created" if created else "User already exists")

    async def HandleClerkUserDeleted(self, request: pb.ClerkUserData, context: Context) -> pb.ClerkWebhookResponse:
        clerk_id = _clerk_id("id", request.id)
        async with self.db.session() as session:
            deleted = await repository.delete_by_clerk_id(session, clerk_id=clerk_id, outbox=self.outbox)
        return pb.ClerkWebhookResponse(message="User deleted" if deleted else "User already deleted")

    async def HandleSubscriptionCreated(
        self, request: pb.RevenueCatSubscriptionData, context: Context
    ) -> pb.SubscriptionCreatedResponse:
        clerk_id = _clerk_id("clerk_user_id", request.clerk_user_id)
        provider_id = _provider_field("provider_id", request.provider_id, required=True)
        if not request.HasField("data"):
            raise InvalidArgument("data", "is required")
        data = {
            "transactionId": _provider_field("data.transaction_id", request.data.transaction_id, required=True),
            "eventId": _provider_field("data.event_id", request.data.event_id, required=False),
            "productId": _provider_field("data.product_id", request.data.product_id, required=False),
        }
        async with self.db.session() as session:
            _, created = await repository.record_subscription(
                session, clerk_id=clerk_id, provider_id=provider_id, data=data, outbox=self.outbox
            )
        return pb.SubscriptionCreatedResponse(
            message="Subscription created" if created else "Subscription already recorded"
        )

    async def GetUserVendors(self, request: pb.UserVendorRequest, context: Context) -> pb.UserVendorResponse:
        user_id = parse_uuid("user_id", request.user_id)
        async with self.db.read() as session:
            await repository.get_user(session, user_id=user_id)
        vendors = [
            pb.UserVendorData(id=v.id, name=v.name)
            async for v in self.vendors.server_stream(
                self.vendors.stub.ListVendors, vendor_pb2.ListVendorsRequest(owner_id=str(user_id))
            )
        ]
        return pb.UserVendorResponse(vendors=vendors)

    async def GetUserByClerkId(self, request: pb.GetUserByClerkIdRequest, context: Context) -> pb.User:
        clerk_id = _clerk_id("clerk_id", request.clerk_id)
        async with self.db.read() as session:
            user = await repository.get_by_clerk_id(session, clerk_id=clerk_id)
            status = await repository.subscription_status(session, user_id=user.id)
        return pb.User(
            id=str(user.id),
            clerk_id=user.clerk_id,
            subscription_status=status.value,
            created_at=user.created_at.isoformat(),
        )
