"""SQLModel tables of the ingestion core. Every row belongs to one account.

Hot paths (event insert, dispatch) use these tables through SQLAlchemy Core
(``Event.__table__``); the ORM serves the low-volume rest.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    DateTime,
    Index,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
)
from sqlmodel import Field, SQLModel

from server.db.dialect import BIGINT_PK

metadata = SQLModel.metadata


def id_is(column: ColumnElement[Any], value: int) -> ColumnElement[bool]:
    """``column == value`` for an id a caller sent (the API's ids are int64): bound as
    BIGINT, so an id past a 32-bit INTEGER column matches nothing on PostgreSQL instead
    of failing the query ("integer out of range")."""
    return column == bindparam(None, value, type_=BigInteger)


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a SQLModel class, typed (SQLModel leaves ``__table__`` untyped)."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _ts(nullable: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(DateTime(timezone=True), nullable=nullable)


class Account(SQLModel, table=True):
    __tablename__ = "accounts"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    # The owner's address, as eSputnik's account info shows it (userEmail); optional.
    email: str | None = Field(default=None, max_length=320)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    # An IANA name; the calendar periods (today, thisWeek...) of segments that name no
    # zone of their own are read in it. None: UTC.
    time_zone: str | None = Field(default=None, max_length=64)


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"
    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="accounts.id", index=True)
    # sha256 of the key; the key itself is never stored.
    key_hash: str = Field(max_length=64, unique=True)
    label: str = Field(default="default", max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class EventType(SQLModel, table=True):
    __tablename__ = "event_types"
    __table_args__ = (UniqueConstraint("account_id", "key", name="uq_event_types_account_key"),)
    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="accounts.id")
    key: str = Field(max_length=100)
    # eSputnik's per-type switch: events of this type may create missing contacts.
    create_contacts: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    # Its events count for segments, those received from segmentation_since on (the last
    # time it was switched on; NULL while off).
    segmentation: bool = Field(default=False)
    segmentation_since: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # "Validate parameters": JSON [{"name", "required"}], NULL when not set
    # (server.eventtypes.settings reads and writes it).
    validate_params: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class EventTypeParam(SQLModel, table=True):
    """The recorded structure of a type's params: how many stored events carried the
    top-level param ``name`` with a value of ``json_type`` (server.eventtypes.shapes)."""

    __tablename__ = "event_type_params"
    event_type_id: int = Field(foreign_key="event_types.id", primary_key=True)
    name: str = Field(max_length=100, primary_key=True)
    # string, number, boolean, null, object or list
    json_type: str = Field(max_length=8, primary_key=True)
    seen: int = Field(sa_column=Column(BigInteger, nullable=False))
    first_seen_at: datetime = Field(sa_column=_ts())
    last_seen_at: datetime = Field(sa_column=_ts())


class Event(SQLModel, table=True):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_account_id", "account_id", "id"),
        Index("ix_events_account_type", "account_id", "event_type_id", "id"),
        Index("ix_events_account_key", "account_id", "key_value", "id"),
        Index("ix_events_unprocessed", "processed_at", "id"),
    )
    id: int | None = Field(default=None, sa_column=Column(BIGINT_PK, primary_key=True))
    account_id: int = Field(foreign_key="accounts.id")
    event_type_id: int = Field(foreign_key="event_types.id")
    key_value: str = Field(max_length=300)
    # The body as received: {"eventTypeKey", "keyValue", "params": [{"name", "value"}]}.
    body: str = Field(sa_column=Column(Text, nullable=False))
    message_id: str | None = Field(default=None, max_length=200)
    contact_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    received_at: datetime = Field(sa_column=_ts())
    occurred_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # Set by the worker that handled the event, atomically with its effects;
    # rows still NULL after a while are enqueued again by the sweeper.
    processed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # Why the workers gave up on the event after their last try (NULL when handled).
    process_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # JSON [{"status", "field", "message"}]: identifiers the worker could not use for the
    # contact (invalid, unknown id, conflicting with stored contacts); NULL when none.
    identity_notes: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # Past events feed history only; they never start workflows.
    is_past: bool = Field(default=False)


class MessageId(SQLModel, table=True):
    """Client-sent message ids seen in the last 24 hours, for de-duplication."""

    __tablename__ = "message_ids"
    __table_args__ = (UniqueConstraint("account_id", "message_id", name="uq_message_ids"),)
    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="accounts.id")
    message_id: str = Field(max_length=200)
    event_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_at: datetime = Field(sa_column=_ts())
