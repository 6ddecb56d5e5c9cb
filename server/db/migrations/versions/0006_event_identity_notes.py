"""events.identity_notes: identifiers an event carried that were not used, and why

Revision ID: 0006_event_identity_notes
Revises: 0002_contacts, 0003_templates, 0004_workflows, 0005_event_process_error
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_event_identity_notes"
# Joins the feature branches on top of 0001 into one head.
down_revision = ("0002_contacts", "0003_templates", "0004_workflows", "0005_event_process_error")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("identity_notes", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch_op:
        batch_op.drop_column("identity_notes")
