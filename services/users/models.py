"""Users, their integrations and subscriptions (SPEC section 6), in this service's own registry."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def _timestamp() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


def _optional_timestamp() -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True)))


class IntegrationType(enum.StrEnum):
    CLERK = "Clerk"
    REVENUECAT = "RevenueCat"


class SubscriptionStatus(enum.StrEnum):
    ACTIVE = "Active"
    CANCELLED = "Cancelled"  # will not renew; still entitled until `period_end`
    INACTIVE = "Inactive"
    PENDING = "Pending"
    BILLING_ISSUE = "BillingIssue"  # the store could not charge; retrying (access kept during a grace period)


class UsersModel(SQLModel, registry=registry()):
    """Root of this service's models: its own metadata."""


class User(UsersModel, table=True):
    __tablename__ = "user"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    clerk_id: str = Field(max_length=128, unique=True)
    lat: float | None = None
    long: float | None = None
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class Integration(UsersModel, table=True):
    __tablename__ = "integration"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    type: IntegrationType = Field(
        sa_column=Column(
            SAEnum(IntegrationType, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
            nullable=False,
        )
    )
    provider_id: str | None = Field(default=None, max_length=256)
    data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    user_id: uuid.UUID = Field(foreign_key="user.id", index=True, ondelete="CASCADE")


class UserSubscription(UsersModel, table=True):
    __tablename__ = "user_subscription"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user.id", unique=True, ondelete="CASCADE")
    status: SubscriptionStatus = Field(
        default=SubscriptionStatus.INACTIVE,
        sa_column=Column(
            SAEnum(SubscriptionStatus, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
            nullable=False,
        ),
    )
    product_id: str | None = Field(default=None, max_length=256)
    period_start: datetime | None = _optional_timestamp()
    period_end: datetime | None = _optional_timestamp()
    # the last RevenueCat event applied: (last_event_at, last_event_id) orders the next one (services.users.lifecycle)
    last_event_at: datetime | None = _optional_timestamp()
    last_event_id: str | None = Field(default=None, max_length=256)
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()
