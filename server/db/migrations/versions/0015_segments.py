"""segments: definitions, members, membership changes, due re-evaluations; events by contact

Revision ID: 0015_segments
Revises: 0014_event_type_settings
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0015_segments"
down_revision = "0014_event_type_settings"
branch_labels = None
depends_on = None

_BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("id", _BIGINT_PK, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("event_types", sa.Text(), nullable=False),
        sa.Column("uses_contact", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("build_total", sa.Integer(), nullable=False),
        sa.Column("build_processed", sa.Integer(), nullable=False),
        sa.Column("build_after", sa.BigInteger(), nullable=False),
        sa.Column("built_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_segments_account", "segments", ["account_id", "id"])
    op.create_table(
        "segment_members",
        sa.Column("segment_id", sa.BigInteger(), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("entered_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("segment_id", "contact_id"),
    )
    op.create_index("ix_segment_members_contact", "segment_members", ["account_id", "contact_id"])
    op.create_table(
        "segment_changes",
        sa.Column("id", _BIGINT_PK, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("segment_id", sa.BigInteger(), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("change", sa.String(length=10), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_segment_changes_segment", "segment_changes", ["segment_id", "id"])
    op.create_index("ix_segment_changes_contact", "segment_changes",
                    ["account_id", "contact_id", "id"])
    op.create_table(
        "segment_due",
        sa.Column("segment_id", sa.BigInteger(), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("due_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("segment_id", "contact_id"),
    )
    op.create_index("ix_segment_due_at", "segment_due", ["due_at"])
    # A contact's events of given types: what re-evaluating one contact reads.
    op.create_index("ix_events_contact_type", "events",
                    ["account_id", "contact_id", "event_type_id"])


def downgrade() -> None:
    op.drop_index("ix_events_contact_type", "events")
    op.drop_index("ix_segment_due_at", "segment_due")
    op.drop_table("segment_due")
    op.drop_index("ix_segment_changes_contact", "segment_changes")
    op.drop_index("ix_segment_changes_segment", "segment_changes")
    op.drop_table("segment_changes")
    op.drop_index("ix_segment_members_contact", "segment_members")
    op.drop_table("segment_members")
    op.drop_index("ix_segments_account", "segments")
    op.drop_table("segments")
