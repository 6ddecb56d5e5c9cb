"""Claims on due steps: which worker runs a run's next step now.

A step is due when its run is active and ``due_at`` has passed. A worker's step pump
claims a batch of due steps with one ``UPDATE`` (``claimed_by``, ``claimed_until`` =
now + ``CLAIM_SECONDS``; on PostgreSQL the candidates are taken ``FOR UPDATE SKIP LOCKED``,
on SQLite the write lock serialises claimers), renews its claims every
``HEARTBEAT_SECONDS`` while it works, and the step's record clears the claim. A worker
that dies stops renewing: its claims lapse within ``CLAIM_SECONDS`` and any live worker
claims the steps again. A claim keeps two workers from doing one step's work twice; it
is not what makes a step happen once: the step commits only if the run is still at that
step (``runs.record_step`` under the run's row lock).

The event batch that starts runs may claim their first steps itself (``claim_runs``, in its
own transaction) for its process's step pump, which runs them right after the commit: no
wake-up, no claiming transaction of their own.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.db.models import as_utc, table_of, utcnow
from server.processing.turns import write_turn
from server.workflows.models import WorkflowRunRow
from server.workflows.runs import ACTIVE, RunRow, row_of

__all__ = ["CLAIM_SECONDS", "HEARTBEAT_SECONDS", "claim_due", "claim_runs", "next_due",
           "renew_claims", "unclaimed_due"]

CLAIM_SECONDS = 4.0
HEARTBEAT_SECONDS = 1.0
_runs = table_of(WorkflowRunRow)


def _claimable(now: datetime) -> ColumnElement[bool]:
    return and_(_runs.c.status.in_(ACTIVE), _runs.c.due_at <= now,
                or_(_runs.c.claimed_until.is_(None), _runs.c.claimed_until < now))


async def unclaimed_due(conn: AsyncConnection, *, now: datetime | None = None) -> bool:
    """Whether any step is due and unclaimed (a read: no write lock when there is none)."""
    found = (await conn.execute(select(_runs.c.id).where(_claimable(now or utcnow()))
                                .limit(1))).first()
    return found is not None


async def next_due(conn: AsyncConnection, *, now: datetime | None = None) -> datetime | None:
    """When the next step not yet due falls due (None: no run waits)."""
    found = (await conn.execute(select(_runs.c.due_at).where(and_(
        _runs.c.status.in_(ACTIVE), _runs.c.due_at > (now or utcnow())))
        .order_by(_runs.c.due_at).limit(1))).scalar()
    return None if found is None else as_utc(found)


async def claim_due(engine: AsyncEngine, *, owner: str, limit: int,
                    seconds: float = CLAIM_SECONDS,
                    skip_accounts: Collection[int] = ()) -> list[RunRow]:
    """Claim up to ``limit`` due, unclaimed steps (oldest due first), none of an account in
    ``skip_accounts`` (the pump's fairness: workers/steps.py); their runs."""
    now = utcnow()
    where = _claimable(now)
    if skip_accounts:
        where = and_(where, _runs.c.account_id.not_in(sorted(skip_accounts)))
    picked = (select(_runs.c.id).where(where).order_by(_runs.c.due_at)
              .limit(limit).with_for_update(skip_locked=True))
    async with write_turn(engine, urgent=True) as conn:
        rows = (await conn.execute(
            update(_runs).where(_runs.c.id.in_(picked.scalar_subquery()))
            .values(claimed_by=owner, claimed_until=now + timedelta(seconds=seconds))
            .returning(*_runs.c))).all()
    return sorted((row_of(r) for r in rows), key=lambda r: r.id)


async def claim_runs(conn: AsyncConnection, *, owner: str, run_ids: list[int],
                     seconds: float = CLAIM_SECONDS) -> list[RunRow]:
    """Claim these runs' due, unclaimed steps inside the caller's transaction (an event
    batch that has just started them); the runs claimed, in id order."""
    if not run_ids:
        return []
    now = utcnow()
    rows = (await conn.execute(
        update(_runs).where(and_(_runs.c.id.in_(run_ids), _claimable(now)))
        .values(claimed_by=owner, claimed_until=now + timedelta(seconds=seconds))
        .returning(*_runs.c))).all()
    return sorted((row_of(r) for r in rows), key=lambda r: r.id)


async def renew_claims(engine: AsyncEngine, *, owner: str, run_ids: list[int],
                       seconds: float = CLAIM_SECONDS) -> int:
    """Extend this owner's claims on these runs; how many it still held."""
    if not run_ids:
        return 0
    # Rows a step transaction holds are skipped, not waited for (it is recording them and
    # clears their claims; waiting could close a lock cycle with it on PostgreSQL).
    mine = (select(_runs.c.id).where(and_(_runs.c.id.in_(run_ids), _runs.c.claimed_by == owner))
            .with_for_update(skip_locked=True))
    async with write_turn(engine, urgent=True) as conn:
        result = await conn.execute(update(_runs).where(_runs.c.id.in_(mine.scalar_subquery()))
                                    .values(claimed_until=utcnow() + timedelta(seconds=seconds)))
    return int(result.rowcount)
