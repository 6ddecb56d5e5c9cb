"""accounts: the account's time zone (calendar periods of segments that name none)

Revision ID: 0018_account_time_zone
Revises: 0017_step_claims
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0018_account_time_zone"
down_revision = "0017_step_claims"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.add_column(sa.Column("time_zone", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.drop_column("time_zone")
