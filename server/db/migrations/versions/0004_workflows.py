"""workflows: definitions, versions, runs, step log, messages

Revision ID: 0004_workflows
Revises: 0001
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_workflows"
down_revision = "0001"
branch_labels = None
depends_on = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "workflows",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("event_type_key", sa.String(100), nullable=False),
        _ts("created_at"), _ts("updated_at"),
    )
    op.create_index("ix_workflows_account_id", "workflows", ["account_id"])
    op.create_index("ix_workflows_trigger", "workflows", ["account_id", "event_type_key", "active"])
    op.create_table(
        "workflow_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.UniqueConstraint("workflow_id", "version", name="uq_workflow_versions"),
    )
    op.create_table(
        "workflow_runs",
        sa.Column("id", BIGINT_PK, primary_key=True),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=True),
        sa.Column("key_value", sa.String(300), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("current_block", sa.String(200), nullable=True),
        sa.Column("step_seq", sa.Integer(), nullable=False),
        _ts("due_at", nullable=True),
        sa.Column("trigger", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _ts("started_at"), _ts("updated_at"), _ts("finished_at", nullable=True),
        sa.UniqueConstraint("workflow_id", "event_id", name="uq_workflow_runs_event"),
    )
    op.create_index("ix_workflow_runs_contact", "workflow_runs",
                    ["account_id", "contact_id", "status"])
    op.create_index("ix_workflow_runs_key", "workflow_runs", ["account_id", "key_value", "status"])
    op.create_index("ix_workflow_runs_policy", "workflow_runs",
                    ["workflow_id", "contact_id", "started_at"])
    op.create_index("ix_workflow_runs_policy_key", "workflow_runs",
                    ["workflow_id", "key_value", "started_at"])
    op.create_index("ix_workflow_runs_due", "workflow_runs", ["status", "due_at"])
    op.create_table(
        "workflow_steps",
        sa.Column("id", BIGINT_PK, primary_key=True),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("block_id", sa.String(200), nullable=False),
        sa.Column("block_type", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("outcome", sa.String(200), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("worker", sa.String(200), nullable=False),
        _ts("finished_at"),
        sa.UniqueConstraint("run_id", "seq", name="uq_workflow_steps"),
    )
    op.create_table(
        "workflow_messages",
        sa.Column("id", BIGINT_PK, primary_key=True),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("block_id", sa.String(200), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=True),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(300), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("created_at"), _ts("updated_at"), _ts("sent_at", nullable=True),
        sa.UniqueConstraint("run_id", "seq", name="uq_workflow_messages"),
    )
    op.create_index("ix_workflow_messages_contact", "workflow_messages",
                    ["account_id", "contact_id", "id"])
    op.create_index("ix_workflow_messages_run", "workflow_messages", ["account_id", "run_id"])


def downgrade() -> None:
    for table in ("workflow_messages", "workflow_steps", "workflow_runs", "workflow_versions",
                  "workflows"):
        op.drop_table(table)
