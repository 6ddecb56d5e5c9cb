"""contacts, push tokens, additional field definitions and values

Revision ID: 0002_contacts
Revises: 0001
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op

revision = "0002_contacts"
down_revision = "0001"
branch_labels = None
depends_on = None

_BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("id", _BIGINT_PK, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("first_name", sa.String(length=60), nullable=True),
        sa.Column("last_name", sa.String(length=60), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("email_key", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("external_customer_id", sa.String(length=300), nullable=True),
        sa.Column("contact_key", sa.String(length=300), nullable=True),
        sa.Column("language_code", sa.String(length=100), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("region", sa.String(length=100), nullable=True),
        sa.Column("town", sa.String(length=100), nullable=True),
        sa.Column("address", sa.String(length=255), nullable=True),
        sa.Column("postcode", sa.String(length=20), nullable=True),
        sa.Column("confirmed", sa.Boolean(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("other_channels", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "email_key", name="uq_contacts_email"),
        sa.UniqueConstraint("account_id", "phone", name="uq_contacts_phone"),
        sa.UniqueConstraint("account_id", "external_customer_id", name="uq_contacts_external_id"),
        sa.UniqueConstraint("account_id", "contact_key", name="uq_contacts_contact_key"),
    )
    op.create_index("ix_contacts_account", "contacts", ["account_id", "id"])
    op.create_table(
        "contact_push_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "token", name="uq_contact_push_tokens"),
    )
    op.create_index("ix_contact_push_tokens_contact_id", "contact_push_tokens", ["contact_id"])
    op.create_table(
        "contact_fields",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("field_id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("allowed_values", sa.Text(), nullable=False),
        sa.Column("min_value", sa.String(length=80), nullable=True),
        sa.Column("max_value", sa.String(length=80), nullable=True),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("account_id", "field_id"),
    )
    op.create_table(
        "contact_field_values",
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("field_id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("contact_id", "field_id"),
    )
    op.create_index(
        "ix_contact_field_values_field", "contact_field_values", ["account_id", "field_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_contact_field_values_field", table_name="contact_field_values")
    op.drop_table("contact_field_values")
    op.drop_table("contact_fields")
    op.drop_index("ix_contact_push_tokens_contact_id", table_name="contact_push_tokens")
    op.drop_table("contact_push_tokens")
    op.drop_index("ix_contacts_account", table_name="contacts")
    op.drop_table("contacts")
