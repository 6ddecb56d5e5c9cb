"""api_messages: email sent by API call (smartsend, message/email), one row per recipient

Revision ID: 0009_api_messages
Revises: 0008_orders
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0009_api_messages"
down_revision = "0008_orders"
branch_labels = None
depends_on = None

_BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_messages",
        sa.Column("id", _BIGINT_PK, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=True),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("sender", sa.Text(), nullable=False),
        sa.Column("transactional", sa.Boolean(), nullable=False),
        sa.Column("meta", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("message_id", sa.String(length=300), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", name="uq_api_messages_request"),
    )
    op.create_index("ix_api_messages_due", "api_messages", ["status", "id"])
    op.create_index("ix_api_messages_account", "api_messages", ["account_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_api_messages_account", "api_messages")
    op.drop_index("ix_api_messages_due", "api_messages")
    op.drop_table("api_messages")
