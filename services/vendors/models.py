"""The vendor record and the shapes of its input, SQLModel-style: base, create, update, table.

These models own the validation rules of a vendor's fields; the table model is what is stored. The service's models
live in their own SQLAlchemy registry so that they never share metadata with another service's tables.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from pydantic import field_validator
from sqlalchemy import Column, DateTime
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

PHONE = re.compile(r"^\+?[0-9 ()./-]{3,32}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


NEXT_VERSION = timedelta(microseconds=1)  # the least a change advances `updated_at`, the vendor's version


def utcnow() -> datetime:
    return datetime.now(UTC)


class VendorsModel(SQLModel, registry=registry()):
    """Root of this service's models: its own metadata (tables of other services are not in it)."""


def _url(value: str | None, field: str) -> str | None:
    if value is not None and not re.match(r"^https?://[^\s/$.?#][^\s]*$", value, re.IGNORECASE):
        raise ValueError(f"{field} must be an http(s) URL")
    return value


class VendorFields(VendorsModel):
    """The optional descriptive fields, with their limits and formats."""

    description: str | None = Field(default=None, max_length=1000)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    website: str | None = Field(default=None, max_length=2048)
    primary_image: str | None = Field(default=None, max_length=2048)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is not None and not PHONE.match(value):
            raise ValueError("not a phone number")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not EMAIL.match(value):
            raise ValueError("not an email address")
        return value

    @field_validator("website")
    @classmethod
    def _website(cls, value: str | None) -> str | None:
        return _url(value, "website")

    @field_validator("primary_image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        return _url(value, "image")


class VendorCreate(VendorFields):
    name: str = Field(min_length=1, max_length=100)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        return value


class VendorUpdate(VendorFields):
    """Only the fields present are changed; `None` clears an optional field."""

    name: str | None = Field(default=None, min_length=1, max_length=100)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


class Vendor(VendorFields, table=True):
    __tablename__ = "vendor"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    owner_id: uuid.UUID = Field(index=True)
    name: str = Field(max_length=100)
    open: bool = False
    lat: float | None = None
    long: float | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))

    def touch(self) -> None:
        """Advance `updated_at`, strictly: it is the vendor's version, which event consumers use to order changes."""
        self.updated_at = max(utcnow(), self.updated_at + NEXT_VERSION)
