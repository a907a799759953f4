"""Webhooks from Clerk (users) and RevenueCat (purchases): authenticated first, then handed to the user service.

Clerk signs with Svix: the official `svix` library checks the signature over id, timestamp and body, and refuses a
timestamp more than five minutes away (replay protection). RevenueCat sends the shared secret configured in its
dashboard as the Authorization header, compared in constant time. Nothing is parsed, let alone acted on, before the
sender is proven; without a configured secret every delivery is refused (the system we replace accepted unsigned
webhooks). Redelivery is harmless: the user service's handlers are idempotent.

RevenueCat's subscription lifecycle events all go to HandleSubscriptionEvent, which applies them in the order of
their own timestamp; this edge only decides which events are lifecycle events and carries their fields over.
"""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from svix.webhooks import WebhookVerificationError

from services.contracts.venta.user.v1 import user_pb2 as pb
from services.gateway.deps import ResourcesDep, UserClient
from services.gateway.models import WebhookAck
from services.gateway.routes import errors, route
from services.kit.http.envelope import ApiError, ErrorDetail, ErrorType

log = logging.getLogger("venta.gateway.webhooks")
router = APIRouter(tags=["webhooks"])
# RevenueCat's event types that change a subscription; the others (TEST, TRANSFER, NON_RENEWING_PURCHASE, ...) are
# acknowledged and ignored
LIFECYCLE_TYPES = frozenset(
    {
        "INITIAL_PURCHASE",
        "RENEWAL",
        "CANCELLATION",
        "UNCANCELLATION",
        "EXPIRATION",
        "BILLING_ISSUE",
        "PRODUCT_CHANGE",
    }
)


class ClerkUser(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1, max_length=128)


class ClerkEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str = Field(max_length=128)
    data: ClerkUser


# what fits the RPC's int64; whether it is a sensible time is the user service's call
Millis = Annotated[int, Field(ge=-(2**63), le=2**63 - 1, description="milliseconds since the epoch")]
Text = Annotated[str, Field(max_length=256)]
Word = Annotated[str, Field(max_length=64)]


class RevenueCatEvent(BaseModel):
    """The fields of RevenueCat's event that Venta reads (RevenueCat sends more, and `null` for what does not apply)."""

    model_config = ConfigDict(extra="ignore")
    type: Word
    id: Text = ""
    app_user_id: Text | None = None
    event_timestamp_ms: Millis | None = None
    product_id: Text | None = None
    new_product_id: Text | None = None
    period_type: Word | None = None
    purchased_at_ms: Millis | None = None
    expiration_at_ms: Millis | None = None
    cancel_reason: Word | None = None
    expiration_reason: Word | None = None
    transaction_id: Text | None = None
    original_transaction_id: Text | None = None
    subscriber_attributes: dict[str, Any] | None = None


class RevenueCatDelivery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    event: RevenueCatEvent


def _unauthorized(code: str, message: str) -> ApiError:
    return ApiError(ErrorType.AUTHENTICATION, code, message)


def _parse(model: type[BaseModel], body: bytes) -> Any:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        detail = ErrorDetail(field=field, message=first["msg"])
        message = f"{field}: {first['msg']}" if field else first["msg"]
        raise ApiError(ErrorType.VALIDATION, "REQUEST_VALIDATION", message, details=[detail]) from None


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(definitions[node["$ref"].rsplit("/", 1)[-1]], definitions)
        return {key: _inline(value, definitions) for key, value in node.items() if key != "$defs"}
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    return node


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The documented body, self-contained: the raw body is read (and verified) by hand, not by FastAPI."""
    schema = model.model_json_schema()
    inlined = _inline(schema, schema.get("$defs", {}))
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": inlined}}}}


@route(
    router,
    "POST",
    "/v1/webhooks/clerk",
    alias="/webhook/clerk",
    response_model=WebhookAck,
    responses=errors(),
    summary="Clerk user events, signed with Svix (user.created, user.deleted)",
    openapi_extra=_body_schema(ClerkEvent),
)
async def clerk_webhook(request: Request, resources: ResourcesDep, users: UserClient) -> WebhookAck:
    body = await request.body()
    if resources.clerk_webhook is None:
        raise _unauthorized("WEBHOOK_NOT_CONFIGURED", "Clerk webhooks are not accepted: no signing secret configured")
    try:
        resources.clerk_webhook.verify(body, dict(request.headers))
    except (WebhookVerificationError, ValueError) as exc:  # ValueError: a body that is not even UTF-8
        raise _unauthorized("WEBHOOK_SIGNATURE_INVALID", f"signature verification failed: {exc}") from None
    event: ClerkEvent = _parse(ClerkEvent, body)
    if event.type == "user.created":
        answer = await users.unary(users.stub.HandleClerkUserCreated, pb.ClerkUserData(id=event.data.id))
    elif event.type == "user.deleted":
        answer = await users.unary(users.stub.HandleClerkUserDeleted, pb.ClerkUserData(id=event.data.id))
        await resources.authenticator.directory.forget(event.data.id)
    else:
        return WebhookAck(message=f"ignored event type {event.type}")
    log.info("clerk %s for %s: %s", event.type, event.data.id, answer.message)
    return WebhookAck(message=answer.message)


def _secret_matches(header: str | None, secret: str) -> bool:
    if not header:
        return False
    presented = header.encode()
    return hmac.compare_digest(presented, secret.encode()) | hmac.compare_digest(presented, f"Bearer {secret}".encode())


def _clerk_user_id(attributes: dict[str, Any] | None) -> str:
    value = (attributes or {}).get("clerkUserId")
    if isinstance(value, dict):
        value = value.get("value")
    if not isinstance(value, str) or not value:
        raise ApiError(
            ErrorType.VALIDATION,
            "REQUEST_VALIDATION",
            "event.subscriber_attributes.clerkUserId: is required",
            details=[ErrorDetail(field="event.subscriber_attributes.clerkUserId", message="is required")],
        )
    return value


def _ignored(event: RevenueCatEvent) -> str | None:
    """Why a delivery changes no subscription, or None for a lifecycle event."""
    if event.type not in LIFECYCLE_TYPES:
        return f"ignored event type {event.type}"
    if event.type == "CANCELLATION" and event.expiration_at_ms is None:
        return "ignored CANCELLATION of a non-subscription purchase"  # a refund of a one-off purchase: no period
    return None


def _lifecycle_event(event: RevenueCatEvent) -> pb.SubscriptionEvent:
    return pb.SubscriptionEvent(
        clerk_user_id=_clerk_user_id(event.subscriber_attributes),
        event_id=event.id,
        type=pb.SubscriptionEventType.Value(f"SUBSCRIPTION_EVENT_TYPE_{event.type}"),
        event_timestamp_ms=event.event_timestamp_ms or 0,
        product_id=event.product_id or "",
        new_product_id=event.new_product_id or "",
        period_type=event.period_type or "",
        purchased_at_ms=event.purchased_at_ms or 0,
        expiration_at_ms=event.expiration_at_ms or 0,
        cancel_reason=event.cancel_reason or "",
        expiration_reason=event.expiration_reason or "",
        transaction_id=event.transaction_id or "",
        original_transaction_id=event.original_transaction_id or "",
    )


@route(
    router,
    "POST",
    "/v1/webhooks/revenuecat",
    alias="/webhook/subscription",
    response_model=WebhookAck,
    responses=errors(404),
    summary="RevenueCat subscription lifecycle events, authenticated by the shared Authorization header",
    openapi_extra=_body_schema(RevenueCatDelivery),
)
async def revenuecat_webhook(request: Request, resources: ResourcesDep, users: UserClient) -> WebhookAck:
    secret = resources.settings.revenuecat_webhook_secret
    if secret is None:
        raise _unauthorized("WEBHOOK_NOT_CONFIGURED", "RevenueCat webhooks are not accepted: no secret configured")
    if not _secret_matches(request.headers.get("authorization"), secret.get_secret_value()):
        raise _unauthorized("WEBHOOK_SECRET_INVALID", "the Authorization header does not match the shared secret")
    body = await request.body()
    event = _parse(RevenueCatDelivery, body).event
    if (reason := _ignored(event)) is not None:
        return WebhookAck(message=reason)
    answer = await users.unary(users.stub.HandleSubscriptionEvent, _lifecycle_event(event))
    return WebhookAck(message=answer.message)
