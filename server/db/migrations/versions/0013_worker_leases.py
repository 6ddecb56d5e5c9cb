"""worker_leases: which worker process holds a partition of the event work; a partial
index on the events still to process, per account in commit order

Revision ID: 0013_worker_leases
Revises: 0012_message_bodies
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0013_worker_leases"
down_revision = "0012_message_bodies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_leases",
        sa.Column("partition", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("partition"),
    )
    op.create_index("ix_events_pending", "events", ["account_id", "id"],
                    sqlite_where=sa.text("processed_at IS NULL"),
                    postgresql_where=sa.text("processed_at IS NULL"))


def downgrade() -> None:
    op.drop_index("ix_events_pending", table_name="events")
    op.drop_table("worker_leases")
