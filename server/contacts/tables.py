"""Contact storage tables: contacts, their push tokens and field values, field definitions.

Every row carries ``account_id``. Unique constraints per account on the email key (the
address lower-cased), the phone, the external customer id and the contact key make two
concurrent creations of the same contact end in one row; push tokens are unique per
account through their own table. Field definition ids are per account (10001 may exist
in every account). Bulk and event paths use these through SQLAlchemy Core.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Table, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from server.db.dialect import BIGINT_PK
from server.db.models import _ts, table_of, utcnow

__all__ = [
    "CONTACTS",
    "FIELDS",
    "FIELD_VALUES",
    "PUSH_TOKENS",
    "ContactFieldRow",
    "ContactFieldValueRow",
    "ContactPushTokenRow",
    "ContactRow",
]


class ContactRow(SQLModel, table=True):
    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("account_id", "email_key", name="uq_contacts_email"),
        UniqueConstraint("account_id", "phone", name="uq_contacts_phone"),
        UniqueConstraint("account_id", "external_customer_id", name="uq_contacts_external_id"),
        UniqueConstraint("account_id", "contact_key", name="uq_contacts_contact_key"),
        Index("ix_contacts_account", "account_id", "id"),
    )
    id: int | None = Field(default=None, sa_column=Column(BIGINT_PK, primary_key=True))
    account_id: int = Field(foreign_key="accounts.id")
    first_name: str | None = Field(default=None, max_length=60)
    last_name: str | None = Field(default=None, max_length=60)
    email: str | None = Field(default=None, max_length=320)
    # email lower-cased: addresses differing only in case are one contact.
    email_key: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=20)  # E.164
    external_customer_id: str | None = Field(default=None, max_length=300)
    contact_key: str | None = Field(default=None, max_length=300)
    language_code: str | None = Field(default=None, max_length=100)
    time_zone: str | None = Field(default=None, max_length=64)
    region: str | None = Field(default=None, max_length=100)
    town: str | None = Field(default=None, max_length=100)
    address: str | None = Field(default=None, max_length=255)
    postcode: str | None = Field(default=None, max_length=20)
    confirmed: bool | None = Field(default=None)
    # "active", "unsubscribed" or "blacklisted".
    status: str = Field(default="active", max_length=20)
    # Who created it: "api", "bulk", "event", "workflow".
    source: str = Field(default="api", max_length=20)
    # Channels beyond email, phone and push tokens: JSON [{"type", "value"}].
    other_channels: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class ContactPushTokenRow(SQLModel, table=True):
    __tablename__ = "contact_push_tokens"
    __table_args__ = (UniqueConstraint("account_id", "token", name="uq_contact_push_tokens"),)
    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="accounts.id")
    contact_id: int = Field(sa_column=Column(
        BigInteger, ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False, index=True))
    token: str = Field(sa_column=Column(Text, nullable=False))


class ContactFieldRow(SQLModel, table=True):
    """An additional field definition; ``field_id`` is the id callers see (10001...)."""

    __tablename__ = "contact_fields"
    account_id: int = Field(foreign_key="accounts.id", primary_key=True)
    field_id: int = Field(primary_key=True)
    name: str = Field(max_length=100)
    type: str = Field(max_length=20)
    allowed_values: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # JSON list
    min_value: str | None = Field(default=None, max_length=80)  # Decimal as text
    max_value: str | None = Field(default=None, max_length=80)
    required: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class ContactFieldValueRow(SQLModel, table=True):
    """One additional field value of a contact, as its JSON rendering."""

    __tablename__ = "contact_field_values"
    __table_args__ = (Index("ix_contact_field_values_field", "account_id", "field_id"),)
    contact_id: int = Field(sa_column=Column(
        BigInteger, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True))
    field_id: int = Field(primary_key=True)
    account_id: int = Field(foreign_key="accounts.id")
    value: str = Field(sa_column=Column(Text, nullable=False))


# The Core tables, typed, for the SQLAlchemy Core paths (SQLModel leaves __table__ untyped).
CONTACTS: Table = table_of(ContactRow)
PUSH_TOKENS: Table = table_of(ContactPushTokenRow)
FIELDS: Table = table_of(ContactFieldRow)
FIELD_VALUES: Table = table_of(ContactFieldValueRow)
