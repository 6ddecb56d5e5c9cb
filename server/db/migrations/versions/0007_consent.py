"""consent: static contact groups and their members, the unsubscribed-address list

Revision ID: 0007_consent
Revises: 0006_account_email
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0007_consent"
down_revision = "0006_account_email"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contact_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "name", name="uq_contact_groups_name"),
    )
    op.create_table(
        "contact_group_members",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["contact_groups.id"]),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("group_id", "contact_id"),
    )
    op.create_index("ix_contact_group_members_account_id", "contact_group_members",
                    ["account_id"])
    op.create_index("ix_contact_group_members_contact", "contact_group_members",
                    ["contact_id"])
    op.create_table(
        "unsubscribed_emails",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("email_key", sa.String(length=320), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("account_id", "email_key"),
    )


def downgrade() -> None:
    op.drop_table("unsubscribed_emails")
    op.drop_index("ix_contact_group_members_contact", "contact_group_members")
    op.drop_index("ix_contact_group_members_account_id", "contact_group_members")
    op.drop_table("contact_group_members")
    op.drop_table("contact_groups")
