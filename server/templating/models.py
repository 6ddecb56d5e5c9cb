"""The stored message template: subject, HTML and text bodies, each a Velocity source."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, Index, Text
from sqlmodel import Field, SQLModel

from server.db.models import utcnow


class MessageTemplateRow(SQLModel, table=True):
    __tablename__ = "message_templates"
    __table_args__ = (Index("ix_message_templates_account", "account_id", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="accounts.id")
    name: str = Field(max_length=200)
    subject: str = Field(sa_column=Column(Text, nullable=False))
    html: str = Field(sa_column=Column(Text, nullable=False))
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow,
                                 sa_column=Column(DateTime(timezone=True), nullable=False))
