"""workflow_runs: the claim of a worker on a run's due step (who, until when) and the tries
of the current step, for the step pump that claims due steps in batches

Revision ID: 0017_step_claims
Revises: 0016_deleted_contacts
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0017_step_claims"
down_revision = "0016_deleted_contacts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workflow_runs") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("tries", sa.Integer(), nullable=False,
                                   server_default=sa.text("0")))


def downgrade() -> None:
    with op.batch_alter_table("workflow_runs") as batch:
        batch.drop_column("tries")
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
