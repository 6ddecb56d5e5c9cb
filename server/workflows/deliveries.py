"""Records of external effects (letters and webhook calls), one per (run, step).

The record is written ``queued`` before the attempt and ``sent`` right after the other side
accepts; a retried step that finds ``sent`` skips the effect. The only repeat possible is a
crash between acceptance and the record, and it carries the same Message-ID / key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.db.dialect import on_conflict_insert
from server.db.models import table_of, utcnow
from server.workflows.models import WorkflowMessageRow
from server.workflows.runtime import Delivery, RunView

_msgs = table_of(WorkflowMessageRow)


@dataclass(frozen=True, slots=True)
class Planned:
    channel: str
    block_id: str
    contact_id: int | None
    recipient: str
    subject: str
    key: str
    refused: str | None = None
    # What is sent, kept with the record: a letter's rendered bodies, a webhook's JSON.
    html: str | None = None
    text: str | None = None


def _where(run: RunView) -> Any:
    return and_(_msgs.c.run_id == run.run_id, _msgs.c.seq == run.seq)


async def open_delivery(engine: AsyncEngine, run: RunView, plan: Planned) -> Delivery | None:
    """Write the record if new; a finished earlier attempt is returned instead (skip it)."""
    now = utcnow()
    async with engine.begin() as conn:
        row = (await conn.execute(select(_msgs.c.status, _msgs.c.reason).where(_where(run)))
               ).first()
        if row is not None and row.status in ("sent", "failed"):
            return Delivery(row.status, row.reason)
        if row is None:
            await conn.execute(on_conflict_insert(conn, _msgs).values(
                account_id=run.account_id, workflow_id=run.workflow_id, run_id=run.run_id,
                seq=run.seq, block_id=plan.block_id, contact_id=plan.contact_id,
                channel=plan.channel, recipient=plan.recipient, subject=plan.subject,
                message_id=plan.key, status="failed" if plan.refused else "queued",
                reason=plan.refused, attempts=0, created_at=now, updated_at=now,
                body_html=plan.html, body_text=plan.text,
            ).on_conflict_do_nothing(index_elements=["run_id", "seq"]))
    if plan.refused:
        return Delivery("failed", plan.refused)
    return None


async def close_delivery(engine: AsyncEngine, run: RunView, *, status: str,
                         reason: str | None = None) -> None:
    """``sent``, ``failed`` (with reason) or ``queued`` again after a temporary failure."""
    now = utcnow()
    values: dict[str, Any] = {"status": status, "reason": reason, "updated_at": now,
                              "attempts": _msgs.c.attempts + 1}
    if status == "sent":
        values["sent_at"] = now
    async with engine.begin() as conn:
        await conn.execute(update(_msgs).where(_where(run)).values(**values))


async def fail_queued(conn: AsyncConnection, *, run_id: int, seq: int, reason: str) -> None:
    await conn.execute(update(_msgs).where(and_(
        _msgs.c.run_id == run_id, _msgs.c.seq == seq, _msgs.c.status == "queued"))
        .values(status="failed", reason=reason, updated_at=utcnow()))
