"""The events the user service publishes (`user.*`, `user.integration.*`), built from stored rows."""

from __future__ import annotations

from services.event_catalog import IntegrationType as EventIntegrationType
from services.event_catalog import UserData, UserIntegrationData
from services.users.models import Integration, User, utcnow

USER_CREATED = "user.created"
USER_DELETED = "user.deleted"
INTEGRATION_CREATED = "user.integration.created"
INTEGRATION_DELETED = "user.integration.deleted"


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
