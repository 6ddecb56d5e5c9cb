"""The orders table: one row per (account, externalOrderId), its document as normalised.

``revision`` counts the order's changes; ``pending_event`` is the order event a route call
decided on and has not yet seen committed (a retried call emits it again, and the event's
message id, which names the revision, keeps it from being stored twice).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Table, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from server.db.dialect import BIGINT_PK
from server.db.models import _ts, table_of, utcnow

__all__ = ["ORDERS", "OrderRow"]


class OrderRow(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("account_id", "external_order_id", name="uq_orders_external_id"),
        Index("ix_orders_account_customer", "account_id", "external_customer_id"),
        Index("ix_orders_account_contact", "account_id", "contact_id"),
        Index("ix_orders_account_email", "account_id", "email"),
    )
    id: int | None = Field(default=None, sa_column=Column(BIGINT_PK, primary_key=True))
    account_id: int = Field(foreign_key="accounts.id")
    external_order_id: str = Field(max_length=300)
    external_customer_id: str | None = Field(default=None, max_length=300)
    contact_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    status: str = Field(max_length=40)
    # Decimal as text: exact, and the same on SQLite and PostgreSQL.
    total_cost: str | None = Field(default=None, max_length=80)
    currency: str | None = Field(default=None, max_length=3)
    ordered_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=20)
    document: str = Field(sa_column=Column(Text, nullable=False))
    revision: int = Field(default=1)
    pending_event: str | None = Field(default=None, max_length=40)
    # The newest event whose data the row holds (route-made or sent by a client).
    last_event_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


ORDERS: Table = table_of(OrderRow)
