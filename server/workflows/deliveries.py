"""Records of external effects (letters and webhook calls), one per (run, step).

The record is written ``queued`` before the attempt and ``sent`` right after the other side
accepts; a retried step that finds ``sent`` skips the effect. The only repeat possible is a
crash between acceptance and the record, and it carries the same Message-ID / key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, case, select, update
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


# The batch forms: the records of a batch's external steps, opened in one transaction
# before the sends and closed in the transaction that records the steps.

async def open_deliveries(engine: AsyncEngine, planned: list[tuple[RunView, Planned]]
                          ) -> list[Delivery | None]:
    """``open_delivery`` for many steps (one each) in one transaction, in order."""
    if not planned:
        return []
    now = utcnow()
    async with engine.begin() as conn:
        found = {(int(r.run_id), int(r.seq)): (r.status, r.reason) for r in (
            await conn.execute(select(_msgs.c.run_id, _msgs.c.seq, _msgs.c.status,
                                      _msgs.c.reason)
                               .where(_msgs.c.run_id.in_(sorted({v.run_id for v, _p in planned}))))
        ).all()}
        new = [{"account_id": run.account_id, "workflow_id": run.workflow_id,
                "run_id": run.run_id, "seq": run.seq, "block_id": plan.block_id,
                "contact_id": plan.contact_id, "channel": plan.channel,
                "recipient": plan.recipient, "subject": plan.subject,
                "message_id": plan.key, "status": "failed" if plan.refused else "queued",
                "reason": plan.refused, "attempts": 0, "created_at": now, "updated_at": now,
                "body_html": plan.html, "body_text": plan.text}
               for run, plan in planned if (run.run_id, run.seq) not in found]
        if new:
            await conn.execute(on_conflict_insert(conn, _msgs)
                               .on_conflict_do_nothing(index_elements=["run_id", "seq"]), new)
    out: list[Delivery | None] = []
    for run, plan in planned:
        earlier = found.get((run.run_id, run.seq))
        if earlier is not None and earlier[0] in ("sent", "failed"):
            out.append(Delivery(earlier[0], earlier[1]))
        elif plan.refused:
            out.append(Delivery("failed", plan.refused))
        else:
            out.append(None)
    return out


_close = update(_msgs).where(and_(_msgs.c.run_id == bindparam("b_run"),
                                  _msgs.c.seq == bindparam("b_seq"))).values(
    status=bindparam("b_status"), reason=bindparam("b_reason"), updated_at=bindparam("b_now"),
    attempts=_msgs.c.attempts + 1,
    sent_at=case((bindparam("b_status") == "sent", bindparam("b_now")), else_=_msgs.c.sent_at))


async def close_deliveries(conn: AsyncConnection,
                           closed: list[tuple[RunView, str, str | None]]) -> None:
    """``close_delivery`` for many steps, (run, status, reason) each, in the caller's
    transaction (the one that records the steps)."""
    if not closed:
        return
    now = utcnow()
    await conn.execute(_close, [{"b_run": run.run_id, "b_seq": run.seq, "b_status": status,
                                 "b_reason": reason, "b_now": now}
                                for run, status, reason in closed])
