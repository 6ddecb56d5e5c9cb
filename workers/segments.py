"""The worker's part in segments: membership after each processed event (the one call
of ``server.segments.membership.apply``), the runs its changes start (workflows on
"entered" / "left", ``server.workflows.segment_runs``) and the segment loop (due
re-evaluations and full recounts, ``server.segments.loop``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from server.db.models import Event, table_of, utcnow
from server.segments.loop import SegmentLoop
from server.segments.membership import Change, apply
from server.workflows.segment_runs import start_segment_runs

_events = table_of(Event)
CLOCK_MARGIN = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class _Linked:
    id: int
    event_type_key: str
    contact_id: int | None


class WorkflowTriggers:
    """``server.segments.loop.Triggers`` over the workflow engine: runs started in the
    changes' transaction, the step pumps woken after it commits."""

    def __init__(self, ctx: dict[str, Any]) -> None:
        self._ctx = ctx

    async def start(self, conn: AsyncConnection, account_id: int,
                    changes: Sequence[Change]) -> list[int]:
        return await start_segment_runs(conn, account_id=account_id, changes=changes,
                                        worker=str(self._ctx.get("worker_name", "")))

    async def enqueue(self, started: list[int]) -> None:
        # The step pumps claim the new runs' first steps; woken, they need not wait a poll.
        from workers.steps import wake_steps

        await wake_steps(self._ctx["redis"], self._ctx["settings"])


async def segment_membership(conn: AsyncConnection, event: Any, ctx: dict[str, Any]) -> None:
    """A ``Processor`` of ``workers.events``, after the contact linking: the event's
    contact re-evaluated in the event's transaction."""
    contact_id = (await conn.execute(select(_events.c.contact_id)
                                     .where(_events.c.id == event.id))).scalar_one_or_none()
    await apply(conn, event.account_id,
                [_Linked(event.id, event.event_type_key, contact_id)], utcnow())


async def segment_batch(conn: AsyncConnection, batch: Any, ctx: dict[str, Any]) -> None:
    """A batch processor (``server.processing.batch``): the batch's contacts re-evaluated
    in the batch's transaction, the one call of ``apply``; the runs its changes start
    begin after the batch commits."""
    # Contacts the linker created or changed were written after their events arrived
    # (a minute's margin for another host's clock): those are evaluated more widely.
    since = min(e.received_at for e in batch.events) - CLOCK_MARGIN if batch.events else None
    # ``apply`` names a contact's last event as the cause of its changes: past events go
    # first, so a contact with a live event in the batch has its change caused by that.
    ordered = [e for e in batch.events if e.past] + [e for e in batch.events if not e.past]
    changes = await apply(conn, batch.account_id,
                          [_Linked(e.id, e.event_type_key, batch.contacts.get(e.id, e.contact_id))
                           for e in ordered], utcnow(), changed_since=since)
    # A change a past event caused starts no run: past events never start workflows.
    past = {e.id for e in batch.events if e.past}
    changes = [c for c in changes if c.event_id not in past]
    if not changes:
        return
    triggers: WorkflowTriggers = ctx["segment_triggers"]
    started = await triggers.start(conn, batch.account_id, changes)
    if started:
        async def after_commit() -> None:
            await triggers.enqueue(started)

        batch.post_commit.append(after_commit)


async def install(ctx: dict[str, Any]) -> None:
    ctx["segment_triggers"] = triggers = WorkflowTriggers(ctx)
    if "batch_processors" in ctx:
        ctx["batch_processors"].append(segment_batch)
    else:
        ctx.setdefault("processors", []).append(segment_membership)
    loop = SegmentLoop(ctx["engine"], triggers=triggers)
    loop.start()
    ctx["segment_loop"] = loop


async def uninstall(ctx: dict[str, Any]) -> None:
    loop = ctx.pop("segment_loop", None)
    if loop is not None:
        await loop.close()
