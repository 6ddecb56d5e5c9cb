"""deleted_contacts: tombstones of deleted contacts, for a bulk import's restoreDeleted

Revision ID: 0016_deleted_contacts
Revises: 0015_segments
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0016_deleted_contacts"
down_revision = "0015_segments"
branch_labels = None
depends_on = None

_BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_KEYS = ("email_key", "phone", "external_customer_id", "contact_key")


def upgrade() -> None:
    op.create_table(
        "deleted_contacts",
        sa.Column("id", _BIGINT_PK, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("email_key", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("external_customer_id", sa.Text(), nullable=True),
        sa.Column("contact_key", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
    )
    for key in _KEYS:
        op.create_index(f"ix_deleted_contacts_{key}", "deleted_contacts", ["account_id", key])


def downgrade() -> None:
    for key in _KEYS:
        op.drop_index(f"ix_deleted_contacts_{key}", "deleted_contacts")
    op.drop_table("deleted_contacts")
