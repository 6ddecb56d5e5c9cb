"""workflow_messages.body_html, body_text: what a letter or webhook call sent, for the console

Revision ID: 0012_message_bodies
Revises: 0011_contact_imports
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0012_message_bodies"
down_revision = "0011_contact_imports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("workflow_messages", sa.Column("body_html", sa.Text(), nullable=True))
    op.add_column("workflow_messages", sa.Column("body_text", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workflow_messages") as batch_op:
        batch_op.drop_column("body_text")
        batch_op.drop_column("body_html")
