"""Records of external effects (letters and webhook calls), one per (run, step).

The record is written ``queued`` before the attempt and ``sent`` right after the other side
accepts; a retried step that finds ``sent`` skips the effect. The only repeat possible is a
crash between acceptance and the record, and it carries the same Message-ID / key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.db.dialect import on_conflict_insert
from server.db.models import table_of, utcnow
from server.processing.turns import write_turn
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
    async with write_turn(engine, urgent=True) as conn:
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
    async with write_turn(engine, urgent=True) as conn:
        await conn.execute(update(_msgs).where(_where(run)).values(**values))


async def fail_queued(conn: AsyncConnection, *, run_id: int, seq: int, reason: str) -> None:
    await conn.execute(update(_msgs).where(and_(
        _msgs.c.run_id == run_id, _msgs.c.seq == seq, _msgs.c.status == "queued"))
        .values(status="failed", reason=reason, updated_at=utcnow()))


# The batch forms: a batch's earlier records read before the sends (a record already
# finished is not sent again), and every record written, how it ended, in the transaction
# that records the steps.


@dataclass(frozen=True, slots=True)
class Ended:
    """How one external step's effect ended, to be recorded with its step."""

    run: RunView
    plan: Planned
    status: str
    reason: str | None = None
    # False for a letter refused before any try (unsubscribed...): no attempt counted.
    attempted: bool = True


async def finished_deliveries(engine: AsyncEngine, keys: list[tuple[int, int]]
                              ) -> dict[tuple[int, int], Delivery]:
    """The records of these (run, step) already ``sent`` or ``failed`` (one read)."""
    if not keys:
        return {}
    wanted = set(keys)
    async with engine.connect() as conn:
        rows = (await conn.execute(
            select(_msgs.c.run_id, _msgs.c.seq, _msgs.c.status, _msgs.c.reason)
            .where(and_(_msgs.c.run_id.in_(sorted({r for r, _s in keys})),
                        _msgs.c.status.in_(("sent", "failed")))))).all()
    return {(int(r.run_id), int(r.seq)): Delivery(r.status, r.reason) for r in rows
            if (int(r.run_id), int(r.seq)) in wanted}


async def record_deliveries(conn: AsyncConnection, ended: list[Ended]) -> None:
    """Write each record as it ended, inside the caller's (the step records') transaction:
    new, or over the record of an earlier try (one more attempt)."""
    if not ended:
        return
    now = utcnow()
    rows = [{"account_id": e.run.account_id, "workflow_id": e.run.workflow_id,
             "run_id": e.run.run_id, "seq": e.run.seq, "block_id": e.plan.block_id,
             "contact_id": e.plan.contact_id, "channel": e.plan.channel,
             "recipient": e.plan.recipient, "subject": e.plan.subject,
             "message_id": e.plan.key, "status": e.status, "reason": e.reason,
             "attempts": 1 if e.attempted else 0, "created_at": now, "updated_at": now,
             "sent_at": now if e.status == "sent" else None,
             "body_html": e.plan.html, "body_text": e.plan.text} for e in ended]
    stmt = on_conflict_insert(conn, _msgs)
    again = stmt.excluded
    await conn.execute(stmt.on_conflict_do_update(index_elements=["run_id", "seq"], set_={
        "status": again.status, "reason": again.reason, "updated_at": again.updated_at,
        "attempts": _msgs.c.attempts + again.attempts,
        "sent_at": func.coalesce(again.sent_at, _msgs.c.sent_at),
        "recipient": again.recipient, "subject": again.subject,
        "body_html": again.body_html, "body_text": again.body_text}), rows)
