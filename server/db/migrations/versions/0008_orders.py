"""orders: eSputnik's orders, one row per (account, externalOrderId)

Revision ID: 0008_orders
Revises: 0007_consent
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0008_orders"
down_revision = "0007_consent"
branch_labels = None
depends_on = None

_BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", _BIGINT_PK, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("external_order_id", sa.String(length=300), nullable=False),
        sa.Column("external_customer_id", sa.String(length=300), nullable=True),
        sa.Column("contact_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("total_cost", sa.String(length=80), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("ordered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("pending_event", sa.String(length=40), nullable=True),
        sa.Column("last_event_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "external_order_id", name="uq_orders_external_id"),
    )
    op.create_index("ix_orders_account_customer", "orders",
                    ["account_id", "external_customer_id"])
    op.create_index("ix_orders_account_contact", "orders", ["account_id", "contact_id"])
    op.create_index("ix_orders_account_email", "orders", ["account_id", "email"])


def downgrade() -> None:
    op.drop_index("ix_orders_account_email", "orders")
    op.drop_index("ix_orders_account_contact", "orders")
    op.drop_index("ix_orders_account_customer", "orders")
    op.drop_table("orders")
