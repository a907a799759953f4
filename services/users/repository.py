"""User persistence. Webhook handlers are idempotent: a redelivered webhook changes nothing the second time.

Every change writes its events to the outbox in the same transaction (and a redelivered webhook, changing nothing,
publishes nothing).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.kit.errors import NotFound
from services.kit.events.outbox import Outbox
from services.users import events
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


async def record_subscription(
    session: AsyncSession, *, clerk_id: str, provider_id: str, data: dict[str, Any], outbox: Outbox
) -> tuple[Integration, bool]:
    """Store a RevenueCat purchase once per transaction and mark the subscription active; (integration, created)."""
    user = await get_by_clerk_id(session, clerk_id=clerk_id)
    existing = (
        await session.exec(
            select(Integration).where(
                Integration.user_id == user.id,
                Integration.type == IntegrationType.REVENUECAT,
                Integration.provider_id == provider_id,
            )
        )
    ).all()
    for integration in existing:
        if (integration.data or {}).get("transactionId") == data.get("transactionId"):
            return integration, False
    integration = Integration(type=IntegrationType.REVENUECAT, provider_id=provider_id, data=data, user_id=user.id)
    session.add(integration)
    subscription = (await session.exec(select(UserSubscription).where(UserSubscription.user_id == user.id))).first()
    if subscription is None:
        subscription = UserSubscription(user_id=user.id)
    subscription.status = SubscriptionStatus.ACTIVE
    subscription.updated_at = utcnow()
    session.add(subscription)
    await session.flush()
    await outbox.add(session, events.INTEGRATION_CREATED, events.integration_data(integration))
    return integration, True


async def subscription_status(session: AsyncSession, *, user_id: uuid.UUID) -> SubscriptionStatus:
    subscription = (await session.exec(select(UserSubscription).where(UserSubscription.user_id == user_id))).first()
    return subscription.status if subscription else SubscriptionStatus.INACTIVE
