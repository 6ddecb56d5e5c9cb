"""events.identity_notes: identifiers an event carried that were not used, and why

Revision ID: 0010_event_identity_notes
Revises: 0009_api_messages
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0010_event_identity_notes"
down_revision = "0009_api_messages"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("identity_notes", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch_op:
        batch_op.drop_column("identity_notes")
