"""The events the user service publishes (`user.*`, `user.integration.*`, `user.subscription.*`), from stored rows."""

from __future__ import annotations

from datetime import datetime

from services.event_catalog import IntegrationType as EventIntegrationType
from services.event_catalog import SubscriptionStatus as EventSubscriptionStatus
from services.event_catalog import UserData, UserIntegrationData, UserSubscriptionData
from services.users.models import Integration, User, UserSubscription, utcnow

USER_CREATED = "user.created"
USER_DELETED = "user.deleted"
INTEGRATION_CREATED = "user.integration.created"
INTEGRATION_DELETED = "user.integration.deleted"
SUBSCRIPTION_UPDATED = "user.subscription.updated"


def user_data(user: User) -> UserData:
    return UserData(clerk_id=user.clerk_id, user_id=str(user.id), timestamp=utcnow())


def integration_data(integration: Integration) -> UserIntegrationData:
    return UserIntegrationData(
        integration_id=str(integration.id),
        provider_id=integration.provider_id,
        type=EventIntegrationType(integration.type.value),
        user_id=str(integration.user_id),
        timestamp=utcnow(),
    )


def subscription_data(subscription: UserSubscription, *, event_type: str, timestamp: datetime) -> UserSubscriptionData:
    return UserSubscriptionData(
        user_id=str(subscription.user_id),
        status=EventSubscriptionStatus(subscription.status.value),
        product_id=subscription.product_id or "",
        period_start=subscription.period_start,
        period_end=subscription.period_end,
        event_type=event_type,
        timestamp=timestamp,
    )
