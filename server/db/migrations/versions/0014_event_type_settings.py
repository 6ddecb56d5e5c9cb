"""event_types settings (segmentation, its switch time, validate_params) and
event_type_params, the recorded structure of each type's params

Revision ID: 0014_event_type_settings
Revises: 0013_worker_leases
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0014_event_type_settings"
down_revision = "0013_worker_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("event_types") as batch_op:
        batch_op.add_column(sa.Column("segmentation", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column("segmentation_since", sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column("validate_params", sa.Text(), nullable=True))
    op.create_table(
        "event_type_params",
        sa.Column("event_type_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("json_type", sa.String(length=8), nullable=False),
        sa.Column("seen", sa.BigInteger(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_type_id"], ["event_types.id"]),
        sa.PrimaryKeyConstraint("event_type_id", "name", "json_type"),
    )


def downgrade() -> None:
    op.drop_table("event_type_params")
    with op.batch_alter_table("event_types") as batch_op:
        batch_op.drop_column("validate_params")
        batch_op.drop_column("segmentation_since")
        batch_op.drop_column("segmentation")
