"""User persistence. Webhook handlers are idempotent: a redelivered webhook changes nothing the second time.

Every change writes its events to the outbox in the same transaction (and a redelivered webhook, changing nothing,
publishes nothing). Subscription changes lock the user's subscription row first, so concurrent deliveries for one
user apply one after the other.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.kit.errors import NotFound
from services.kit.events.outbox import Outbox
from services.users import events, lifecycle
from services.users.lifecycle import LifecycleEvent, SubscriptionEventType
from services.users.models import Integration, IntegrationType, SubscriptionStatus, User, UserSubscription, utcnow


async def get_by_clerk_id(session: AsyncSession, *, clerk_id: str) -> User:
    user = (await session.exec(select(User).where(User.clerk_id == clerk_id))).first()
    if user is None:
        raise NotFound(f"no user for Clerk id {clerk_id}")
    return user


async def get_user(session: AsyncSession, *, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


async def create_from_clerk(session: AsyncSession, *, clerk_id: str, outbox: Outbox) -> tuple[User, bool]:
    """The user for `clerk_id`, created with its Clerk integration unless it exists; (user, created)."""
    inserted = await session.exec(
        insert(User)
        .values(id=uuid.uuid4(), clerk_id=clerk_id, created_at=utcnow(), updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["clerk_id"])
        .returning(User.id)  # type: ignore[arg-type,call-overload]
    )
    new_id = inserted.scalar_one_or_none()  # type: ignore[attr-defined]
    user = await get_by_clerk_id(session, clerk_id=clerk_id)
    if new_id is not None:
        integration = Integration(type=IntegrationType.CLERK, provider_id=clerk_id, user_id=user.id)
        session.add(integration)
        session.add(UserSubscription(user_id=user.id))
        await session.flush()
        await outbox.add(session, events.USER_CREATED, events.user_data(user))
        await outbox.add(session, events.INTEGRATION_CREATED, events.integration_data(integration))
    return user, new_id is not None


async def delete_by_clerk_id(session: AsyncSession, *, clerk_id: str, outbox: Outbox) -> bool:
    user = (await session.exec(select(User).where(User.clerk_id == clerk_id).with_for_update())).first()
    if user is None:
        return False
    for integration in (await session.exec(select(Integration).where(Integration.user_id == user.id))).all():
        await outbox.add(session, events.INTEGRATION_DELETED, events.integration_data(integration))
    await outbox.add(session, events.USER_DELETED, events.user_data(user))
    await session.delete(user)
    await session.flush()
    return True


async def lock_subscription(session: AsyncSession, *, user_id: uuid.UUID) -> UserSubscription:
    """The user's subscription row, locked until the transaction ends (created if missing).

    Concurrent deliveries for one user wait here for each other, so each compares itself with what the previous
    one left, never with a state both read before either wrote.
    """
    query = select(UserSubscription).where(UserSubscription.user_id == user_id).with_for_update()
    subscription = (await session.exec(query)).first()
    if subscription is None:  # a user from before subscriptions were created with the user
        now = utcnow()
        await session.exec(
            insert(UserSubscription)  # type: ignore[call-overload]
            .values(
                id=uuid.uuid4(), user_id=user_id, status=SubscriptionStatus.INACTIVE, created_at=now, updated_at=now
            )
            .on_conflict_do_nothing(index_elements=["user_id"])
        )
        subscription = (await session.exec(query)).one()
    return subscription


async def _record_purchase(
    session: AsyncSession, *, user_id: uuid.UUID, provider_id: str, data: dict[str, Any], outbox: Outbox
) -> tuple[Integration, bool]:
    """The RevenueCat integration of one purchase, once per transaction id; (integration, created)."""
    existing = (
        await session.exec(
            select(Integration).where(
                Integration.user_id == user_id,
                Integration.type == IntegrationType.REVENUECAT,
                Integration.provider_id == provider_id,
            )
        )
    ).all()
    for integration in existing:
        if (integration.data or {}).get("transactionId") == data.get("transactionId"):
            return integration, False
    integration = Integration(type=IntegrationType.REVENUECAT, provider_id=provider_id, data=data, user_id=user_id)
    session.add(integration)
    await session.flush()
    await outbox.add(session, events.INTEGRATION_CREATED, events.integration_data(integration))
    return integration, True


async def record_subscription(
    session: AsyncSession, *, clerk_id: str, provider_id: str, data: dict[str, Any], outbox: Outbox
) -> tuple[Integration, bool]:
    """Store a RevenueCat purchase once per transaction and mark the subscription active; (integration, created).

    The original contract, unordered: it activates only a subscription that no lifecycle event has set yet, so a
    late call can never undo what `apply_subscription_event` decided.
    """
    user = await get_by_clerk_id(session, clerk_id=clerk_id)
    subscription = await lock_subscription(session, user_id=user.id)
    integration, created = await _record_purchase(
        session, user_id=user.id, provider_id=provider_id, data=data, outbox=outbox
    )
    if not created or subscription.last_event_at is not None:
        return integration, created
    if (subscription.status, subscription.product_id) != (SubscriptionStatus.ACTIVE, provider_id):
        subscription.status = SubscriptionStatus.ACTIVE
        subscription.product_id = provider_id
        subscription.updated_at = utcnow()
        session.add(subscription)
        await session.flush()
        changed = events.subscription_data(
            subscription, event_type=SubscriptionEventType.INITIAL_PURCHASE.value, timestamp=subscription.updated_at
        )
        await outbox.add(session, events.SUBSCRIPTION_UPDATED, changed)
    return integration, True


async def apply_subscription_event(
    session: AsyncSession, *, clerk_id: str, event: LifecycleEvent, outbox: Outbox
) -> tuple[UserSubscription, bool]:
    """Apply one RevenueCat event if it is newer than the last applied one; (subscription, applied).

    A repeated or older event changes nothing and publishes nothing. An applied one writes the new state and its
    `user.subscription.updated` in this transaction (an INITIAL_PURCHASE also records its integration).
    """
    user = await get_by_clerk_id(session, clerk_id=clerk_id)
    subscription = await lock_subscription(session, user_id=user.id)
    if not lifecycle.supersedes(
        event, last_event_at=subscription.last_event_at, last_event_id=subscription.last_event_id
    ):
        return subscription, False
    state = lifecycle.state_after(event)
    subscription.status = state.status
    subscription.product_id = state.product_id
    subscription.period_start = state.period_start
    subscription.period_end = state.period_end
    subscription.last_event_at = state.last_event_at
    subscription.last_event_id = state.last_event_id
    subscription.updated_at = utcnow()
    session.add(subscription)
    if event.type is SubscriptionEventType.INITIAL_PURCHASE:
        purchase = {"transactionId": event.transaction_id, "eventId": event.event_id, "productId": event.product_id}
        await _record_purchase(session, user_id=user.id, provider_id=event.product_id, data=purchase, outbox=outbox)
    await session.flush()
    data = events.subscription_data(subscription, event_type=event.type.value, timestamp=event.at)
    await outbox.add(session, events.SUBSCRIPTION_UPDATED, data)
    return subscription, True


async def subscription_status(session: AsyncSession, *, user_id: uuid.UUID) -> SubscriptionStatus:
    subscription = (await session.exec(select(UserSubscription).where(UserSubscription.user_id == user_id))).first()
    return subscription.status if subscription else SubscriptionStatus.INACTIVE
