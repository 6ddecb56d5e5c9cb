"""contact_imports: bulk import sessions and their per-contact results

Revision ID: 0011_contact_imports
Revises: 0010_event_identity_notes
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0011_contact_imports"
down_revision = "0010_event_identity_notes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contact_imports",
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("results", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("session_id"),
    )
    op.create_index("ix_contact_imports_account", "contact_imports",
                    ["account_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_contact_imports_account", "contact_imports")
    op.drop_table("contact_imports")
