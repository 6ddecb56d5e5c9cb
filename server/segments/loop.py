"""The worker's segment loop: re-evaluations that fall due (windows ending) and full
recounts of new or edited segments, a chunk of contacts per transaction.

Due rows are claimed by deleting them (``DELETE ... RETURNING``), so two workers never
re-evaluate the same pair for the same due time. A recount locks its segment row per
chunk and keeps a cursor (``build_after``), so it resumes where a stopped worker left it
and restarts when the definition changes under it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.contacts.tables import CONTACTS
from server.db.dialect import lock_rows
from server.db.models import utcnow
from server.segments.membership import Cause, Change, reevaluate
from server.segments.store import Segment, account_segments, segment_from_row
from server.segments.tables import SEGMENT_DUE, SEGMENT_MEMBERS, SEGMENTS

__all__ = ["DUE_BATCH", "RECOUNT_CHUNK", "SegmentLoop", "Triggers", "recount_step", "run_due"]

log = logging.getLogger(__name__)
DUE_BATCH = 500
RECOUNT_CHUNK = 500


class Triggers(Protocol):
    """What membership changes start (workflows on "entered" / "left"): ``start`` in the
    changes' transaction, ``enqueue`` what it started once that transaction committed."""

    async def start(self, conn: AsyncConnection, account_id: int,
                    changes: Sequence[Change]) -> list[int]: ...

    async def enqueue(self, started: list[int]) -> None: ...


async def run_due(engine: AsyncEngine, *, now: datetime, limit: int = DUE_BATCH,
                  triggers: Triggers | None = None) -> int:
    """Re-evaluate up to ``limit`` (segment, contact) pairs due by ``now``; how many."""
    started: list[int] = []
    async with engine.begin() as conn:
        due = (select(SEGMENT_DUE.c.segment_id, SEGMENT_DUE.c.contact_id)
               .where(SEGMENT_DUE.c.due_at <= now).order_by(SEGMENT_DUE.c.due_at).limit(limit))
        claimed = (await conn.execute(
            sql_delete(SEGMENT_DUE)
            .where(tuple_(SEGMENT_DUE.c.segment_id, SEGMENT_DUE.c.contact_id).in_(due))
            .returning(SEGMENT_DUE.c.account_id, SEGMENT_DUE.c.segment_id,
                       SEGMENT_DUE.c.contact_id))).all()
        pairs: dict[int, dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
        for row in claimed:
            pairs[int(row.account_id)][int(row.segment_id)].add(int(row.contact_id))
        for account_id, by_segment in pairs.items():
            segments = {s.id: s for s in await account_segments(conn, account_id=account_id)}
            for segment_id, contacts in by_segment.items():
                if segment_id in segments:
                    changes = await reevaluate(conn, account_id=account_id,
                                               contact_ids=contacts,
                                               segments=[segments[segment_id]], now=now,
                                               default_cause=Cause("time window moved on"))
                    if triggers is not None and changes:
                        started += await triggers.start(conn, account_id, changes)
    if triggers is not None and started:
        await triggers.enqueue(started)
    return len(claimed)


async def _building(conn: AsyncConnection) -> Segment | None:
    candidate = (await conn.execute(select(SEGMENTS.c.id).where(SEGMENTS.c.status == "building")
                                    .order_by(SEGMENTS.c.updated_at).limit(1))).first()
    if candidate is None:
        return None
    row = (await lock_rows(conn, select(SEGMENTS).where(SEGMENTS.c.id == candidate.id),
                           table=SEGMENTS, where=SEGMENTS.c.id == candidate.id)).first()
    if row is None or row.status != "building":
        return None  # another worker finished it meanwhile
    return segment_from_row(row)


async def recount_step(engine: AsyncEngine, *, now: datetime, chunk: int = RECOUNT_CHUNK,
                       triggers: Triggers | None = None) -> bool:
    """One chunk of one building segment's recount; False when none is building.

    A segment's first count starts no runs (its members were in before it existed, and a
    new "entered" workflow must not greet all of them); a recount of a segment built
    before (a new version, a type's segmentation switched off, an additional field
    deleted, the account's zone moved) starts the runs of the changes it makes: those
    contacts did enter or leave."""
    started: list[int] = []
    async with engine.begin() as conn:
        segment = await _building(conn)
        if segment is None:
            return False
        ids = [int(r.id) for r in await conn.execute(
            select(CONTACTS.c.id).where((CONTACTS.c.account_id == segment.account_id)
                                        & (CONTACTS.c.id > segment.build_after))
            .order_by(CONTACTS.c.id).limit(chunk))]
        done = len(ids) < chunk
        upto = ids[-1] if ids else segment.build_after
        # Members whose contacts are gone leave too: they are in no chunk of contacts.
        stale = select(SEGMENT_MEMBERS.c.contact_id).where(
            (SEGMENT_MEMBERS.c.segment_id == segment.id)
            & (SEGMENT_MEMBERS.c.contact_id > segment.build_after))
        if not done:
            stale = stale.where(SEGMENT_MEMBERS.c.contact_id <= upto)
        gone = {int(r.contact_id) for r in await conn.execute(stale)} - set(ids)
        changes = await reevaluate(conn, account_id=segment.account_id,
                                   contact_ids=ids + sorted(gone), segments=[segment], now=now,
                                   default_cause=Cause(f"recount (version {segment.version})"))
        if triggers is not None and changes and segment.built_at is not None:
            started = await triggers.start(conn, segment.account_id, changes)
        values: dict[str, object] = {"build_after": upto,
                                     "build_processed": SEGMENTS.c.build_processed + len(ids)}
        if done:
            values.update(status="ready", built_at=now,
                          build_total=SEGMENTS.c.build_processed + len(ids))
        else:
            total = (await conn.execute(select(func.count()).select_from(CONTACTS).where(
                CONTACTS.c.account_id == segment.account_id))).scalar_one()
            values["build_total"] = int(total)
        await conn.execute(update(SEGMENTS).where(SEGMENTS.c.id == segment.id).values(**values))
    if triggers is not None and started:
        await triggers.enqueue(started)
    return True


class SegmentLoop:
    """Runs ``run_due`` and ``recount_step`` until stopped; idle, it looks again every
    ``poll`` seconds (the bound on how late a window's end is noticed)."""

    def __init__(self, engine: AsyncEngine, *, poll: float = 0.1,
                 triggers: Triggers | None = None) -> None:
        self._engine = engine
        self._poll = poll
        self._triggers = triggers
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="segments")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                worked = await run_due(self._engine, now=utcnow(),
                                       triggers=self._triggers) > 0
                worked = await recount_step(self._engine, now=utcnow(),
                                            triggers=self._triggers) or worked
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("segment loop step failed; trying again in a second")
                await asyncio.sleep(1.0)
                continue
            if not worked:
                await asyncio.sleep(self._poll)
