"""accounts.email: the owner's address that account info answers (userEmail)

Revision ID: 0006_account_email
Revises: 0002_contacts, 0003_templates, 0004_workflows, 0005_event_process_error
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_account_email"
# Joins the feature branches that grew from 0001, so the tree has one head again.
down_revision = ("0002_contacts", "0003_templates", "0004_workflows", "0005_event_process_error")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("email", sa.String(length=320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.drop_column("email")
