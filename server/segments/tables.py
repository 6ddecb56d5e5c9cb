"""Segment tables: definitions, current members, the log of membership changes, and the
due times at which a member's window conditions must be looked at again.

``segment_due`` holds at most one row per (segment, contact): the next moment its answer
may change with no new data. The worker reads it by ``due_at`` (indexed), so expiry costs
the contacts whose windows end, never a scan of every member.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Table, Text
from sqlmodel import Field, SQLModel

from server.db.dialect import BIGINT_PK
from server.db.models import _ts, table_of, utcnow

__all__ = ["SEGMENTS", "SEGMENT_CHANGES", "SEGMENT_DUE", "SEGMENT_MEMBERS", "SegmentChangeRow",
           "SegmentDueRow", "SegmentMemberRow", "SegmentRow"]


class SegmentRow(SQLModel, table=True):
    __tablename__ = "segments"
    __table_args__ = (Index("ix_segments_account", "account_id", "id"),)
    id: int | None = Field(default=None, sa_column=Column(BIGINT_PK, primary_key=True))
    account_id: int = Field(foreign_key="accounts.id")
    name: str = Field(max_length=200)
    # The checked definition document: {"name", "conditions", "timeZone"}.
    definition: str = Field(sa_column=Column(Text, nullable=False))
    # JSON list of the event type keys its conditions read (which events re-evaluate it).
    event_types: str = Field(sa_column=Column(Text, nullable=False))
    uses_contact: bool = Field(default=False)
    version: int = Field(default=1)
    # "building" while the full recount of this version runs, then "ready".
    status: str = Field(default="building", max_length=20)
    build_total: int = Field(default=0)
    build_processed: int = Field(default=0)
    # The recount's cursor: contacts with ids above it are still to be counted.
    build_after: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    built_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class SegmentMemberRow(SQLModel, table=True):
    __tablename__ = "segment_members"
    __table_args__ = (Index("ix_segment_members_contact", "account_id", "contact_id"),)
    segment_id: int = Field(sa_column=Column(BigInteger, primary_key=True))
    contact_id: int = Field(sa_column=Column(BigInteger, primary_key=True))
    account_id: int = Field(foreign_key="accounts.id")
    entered_at: datetime = Field(sa_column=_ts())


class SegmentChangeRow(SQLModel, table=True):
    """One entry or exit: when, why (``reason``), and the event that caused it if any."""

    __tablename__ = "segment_changes"
    __table_args__ = (
        Index("ix_segment_changes_segment", "segment_id", "id"),
        Index("ix_segment_changes_contact", "account_id", "contact_id", "id"),
    )
    id: int | None = Field(default=None, sa_column=Column(BIGINT_PK, primary_key=True))
    account_id: int = Field(foreign_key="accounts.id")
    segment_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    contact_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    # "entered" or "left".
    change: str = Field(max_length=10)
    at: datetime = Field(sa_column=_ts())
    reason: str = Field(max_length=200)
    event_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class SegmentDueRow(SQLModel, table=True):
    __tablename__ = "segment_due"
    __table_args__ = (Index("ix_segment_due_at", "due_at"),)
    segment_id: int = Field(sa_column=Column(BigInteger, primary_key=True))
    contact_id: int = Field(sa_column=Column(BigInteger, primary_key=True))
    account_id: int = Field(foreign_key="accounts.id")
    due_at: datetime = Field(sa_column=_ts())


SEGMENTS: Table = table_of(SegmentRow)
SEGMENT_MEMBERS: Table = table_of(SegmentMemberRow)
SEGMENT_CHANGES: Table = table_of(SegmentChangeRow)
SEGMENT_DUE: Table = table_of(SegmentDueRow)
