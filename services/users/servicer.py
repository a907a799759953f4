"""The UserService gRPC edge. GetUserVendors asks the vendor service (its owner of record) over gRPC."""

from __future__ import annotations

import logging
import re
from datetime import datetime

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
from services.users.lifecycle import MAX_MILLIS, LifecycleEvent, SubscriptionEventType, from_millis

log = logging.getLogger("venta.users")
CLERK_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
MAX_PROVIDER_FIELD = 256
EVENT_TYPE_PREFIX = "SUBSCRIPTION_EVENT_TYPE_"


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


def _optional(field: str, value: str) -> str | None:
    return _provider_field(field, value, required=False) or None


def _millis(field: str, value: int) -> datetime:
    if value == 0:
        raise InvalidArgument(field, "is required")
    if not 0 < value <= MAX_MILLIS:
        raise InvalidArgument(field, "must be a positive number of milliseconds since 1970 (before the year 10000)")
    return from_millis(value)


def _event_type(value: pb.SubscriptionEventType.ValueType) -> SubscriptionEventType:
    try:
        return SubscriptionEventType(pb.SubscriptionEventType.Name(value).removeprefix(EVENT_TYPE_PREFIX))
    except ValueError:
        raise InvalidArgument("type", f"must be one of {', '.join(SubscriptionEventType)}") from None


def _lifecycle_event(request: pb.SubscriptionEvent) -> LifecycleEvent:
    """The request as a LifecycleEvent, or an InvalidArgument naming the first field at fault."""
    event_id = _provider_field("event_id", request.event_id, required=True)
    event_type = _event_type(request.type)
    at = _millis("event_timestamp_ms", request.event_timestamp_ms)
    product_id = _provider_field("product_id", request.product_id, required=True)
    purchased_at = _millis("purchased_at_ms", request.purchased_at_ms)
    expires_at = _millis("expiration_at_ms", request.expiration_at_ms)
    if expires_at <= purchased_at:
        raise InvalidArgument("expiration_at_ms", "must be after purchased_at_ms")
    purchase = event_type is SubscriptionEventType.INITIAL_PURCHASE  # recorded once per transaction: needs its id
    reasons = {
        SubscriptionEventType.CANCELLATION: _optional("cancel_reason", request.cancel_reason),
        SubscriptionEventType.EXPIRATION: _optional("expiration_reason", request.expiration_reason),
    }
    return LifecycleEvent(
        event_id=event_id,
        type=event_type,
        at=at,
        product_id=product_id,
        purchased_at=purchased_at,
        expires_at=expires_at,
        new_product_id=_optional("new_product_id", request.new_product_id),
        transaction_id=_provider_field("transaction_id", request.transaction_id, required=purchase) or None,
        original_transaction_id=_optional("original_transaction_id", request.original_transaction_id),
        period_type=_optional("period_type", request.period_type),
        reason=reasons.get(event_type),
    )


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

    async def HandleSubscriptionEvent(
        self, request: pb.SubscriptionEvent, context: Context
    ) -> pb.SubscriptionEventResponse:
        clerk_id = _clerk_id("clerk_user_id", request.clerk_user_id)
        event = _lifecycle_event(request)
        async with self.db.session() as session:
            subscription, applied = await repository.apply_subscription_event(
                session, clerk_id=clerk_id, event=event, outbox=self.outbox
            )
        status = subscription.status.value
        if applied:
            message = f"{event.type} applied: subscription {status}"
            log.info("subscription of %s: %s (%s) -> %s", clerk_id, event.type, event.reason or "-", status)
        elif subscription.last_event_id == event.event_id:
            message = f"{event.type} {event.event_id} already applied"
        else:
            message = f"{event.type} {event.event_id} is older than the last applied event: ignored"
        return pb.SubscriptionEventResponse(message=message, applied=applied, status=status)

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
