"""API-sent messages: one row per recipient, its outcome, and what it was asked to carry.

``request_id`` is the public id a caller reads the outcome by. A row is written ``queued``
(or ``failed`` when suppression refused it up front); the worker sends it and records
``sent`` or ``failed``, retrying a temporary failure with backoff.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Table, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from server.db.dialect import BIGINT_PK
from server.db.models import _ts, table_of, utcnow

__all__ = ["API_MESSAGES", "ApiMessageRow"]


class ApiMessageRow(SQLModel, table=True):
    __tablename__ = "api_messages"
    __table_args__ = (
        UniqueConstraint("request_id", name="uq_api_messages_request"),
        Index("ix_api_messages_due", "status", "id"),
        Index("ix_api_messages_account", "account_id", "id"),
    )
    id: int | None = Field(default=None, sa_column=Column(BIGINT_PK, primary_key=True))
    account_id: int = Field(foreign_key="accounts.id")
    request_id: str = Field(max_length=36)
    # "smartsend" (a stored template) or "email" (content given in the call).
    kind: str = Field(max_length=20)
    template_id: int | None = Field(default=None)
    recipient: str = Field(sa_column=Column(Text, nullable=False))
    contact_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    # JSON: the template's ``data`` (smartsend's jsonParam), or the given subject/html/text.
    content: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    sender: str = Field(sa_column=Column(Text, nullable=False))
    # Obligatory (transactional): sent to unsubscribed addresses, never to blacklisted ones.
    transactional: bool = Field(default=False)
    # JSON: what the caller sent beyond the message (tags, campaignId, externalRequestId...).
    meta: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    # queued | sent | failed
    status: str = Field(max_length=20)
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    message_id: str = Field(max_length=300)
    attempts: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    sent_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


API_MESSAGES: Table = table_of(ApiMessageRow)
