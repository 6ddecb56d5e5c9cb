"""Tables of the workflow engine: definitions and their versions, runs, step log, messages.

No foreign keys to other features' tables; every row carries its ``account_id``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from server.db.dialect import BIGINT_PK
from server.db.models import utcnow


def _ts(nullable: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(DateTime(timezone=True), nullable=nullable)


class WorkflowRow(SQLModel, table=True):
    __tablename__ = "workflows"
    __table_args__ = (Index("ix_workflows_trigger", "account_id", "event_type_key", "active"),)
    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(index=True)
    name: str = Field(max_length=200)
    active: bool = Field(default=False)
    version: int = Field(default=1)
    # The current version's trigger type, for the per-event lookup.
    event_type_key: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class WorkflowVersionRow(SQLModel, table=True):
    __tablename__ = "workflow_versions"
    __table_args__ = (UniqueConstraint("workflow_id", "version", name="uq_workflow_versions"),)
    id: int | None = Field(default=None, primary_key=True)
    workflow_id: int = Field()
    account_id: int = Field()
    version: int = Field()
    definition: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class WorkflowRunRow(SQLModel, table=True):
    __tablename__ = "workflow_runs"
    __table_args__ = (
        UniqueConstraint("workflow_id", "event_id", name="uq_workflow_runs_event"),
        Index("ix_workflow_runs_contact", "account_id", "contact_id", "status"),
        Index("ix_workflow_runs_key", "account_id", "key_value", "status"),
        Index("ix_workflow_runs_policy", "workflow_id", "contact_id", "started_at"),
        Index("ix_workflow_runs_policy_key", "workflow_id", "key_value", "started_at"),
        Index("ix_workflow_runs_due", "status", "due_at"),
    )
    id: int | None = Field(default=None, sa_column=Column(BIGINT_PK, primary_key=True))
    account_id: int = Field()
    workflow_id: int = Field()
    version: int = Field()
    event_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    contact_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    key_value: str = Field(max_length=300)
    # running | waiting (in a timer) | completed | stopped | failed
    status: str = Field(max_length=20)
    current_block: str | None = Field(default=None, max_length=200)
    # The seq of the next step; the step job (run id, seq) is the only one that may advance.
    step_seq: int = Field(default=1, sa_column=Column(Integer, nullable=False))
    due_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # {"eventTypeKey", "keyValue", "params"} of the trigger event, for every block.
    trigger: str = Field(sa_column=Column(Text, nullable=False))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    started_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    finished_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # The worker whose step pump holds the due step, until when (renewed while it runs;
    # server.workflows.claims); NULL when nobody does.
    claimed_by: str | None = Field(default=None, max_length=200)
    claimed_until: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # Tries of the current step that asked to be retried later (back to 0 when it moves on).
    tries: int = Field(default=0, sa_column=Column(Integer, nullable=False,
                                                   server_default=text("0")))


class WorkflowStepRow(SQLModel, table=True):
    __tablename__ = "workflow_steps"
    __table_args__ = (UniqueConstraint("run_id", "seq", name="uq_workflow_steps"),)
    id: int | None = Field(default=None, sa_column=Column(BIGINT_PK, primary_key=True))
    account_id: int = Field()
    run_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    seq: int = Field()
    block_id: str = Field(max_length=200)
    block_type: str = Field(max_length=40)
    # done | skipped | failed | stopped
    status: str = Field(max_length=20)
    outcome: str | None = Field(default=None, max_length=200)
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    worker: str = Field(default="", max_length=200)
    finished_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class WorkflowMessageRow(SQLModel, table=True):
    __tablename__ = "workflow_messages"
    __table_args__ = (
        UniqueConstraint("run_id", "seq", name="uq_workflow_messages"),
        Index("ix_workflow_messages_contact", "account_id", "contact_id", "id"),
        Index("ix_workflow_messages_run", "account_id", "run_id"),
    )
    id: int | None = Field(default=None, sa_column=Column(BIGINT_PK, primary_key=True))
    account_id: int = Field()
    workflow_id: int = Field()
    run_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    seq: int = Field()
    block_id: str = Field(max_length=200)
    contact_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    # email | webhook
    channel: str = Field(max_length=20)
    recipient: str = Field(sa_column=Column(Text, nullable=False))
    subject: str = Field(default="", sa_column=Column(Text, nullable=False))
    # The Message-ID header, or the webhook's Idempotency-Key.
    message_id: str = Field(max_length=300)
    # queued | sent | failed
    status: str = Field(max_length=20)
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    attempts: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    sent_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # What went out: a letter's rendered HTML and text, a webhook's JSON body. Listings leave
    # them out (queries.list_messages); NULL in records made before they were kept.
    body_html: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    body_text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
