"""The overview's counts: events per hour per type, runs and messages by status, backlog."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from server.db.models import Event, EventType, table_of, utcnow
from server.workflows.models import WorkflowMessageRow, WorkflowRunRow

_events = table_of(Event)
_types = table_of(EventType)
_runs = table_of(WorkflowRunRow)
_msgs = table_of(WorkflowMessageRow)
HOURS = 24


@dataclass(slots=True)
class TypeActivity:
    key: str
    hourly: list[int] = field(default_factory=lambda: [0] * HOURS)
    last_hour: int = 0
    today: int = 0


@dataclass(frozen=True, slots=True)
class Overview:
    since: datetime
    types: list[TypeActivity]
    runs_by_status: dict[str, int]
    messages_by_status: dict[str, int]
    events_total: int
    events_pending: int
    events_failed: int
    runs_waiting: int
    runs_due: int


def hour_starts(now: datetime) -> list[datetime]:
    """The starts of the last ``HOURS`` whole hours, oldest first, the current one last."""
    current = now.replace(minute=0, second=0, microsecond=0)
    return [current - timedelta(hours=HOURS - 1 - i) for i in range(HOURS)]


async def overview(engine: AsyncEngine, *, account_id: int, now: datetime | None = None
                   ) -> Overview:
    now = now or utcnow()
    starts = hour_starts(now)
    # One bucket number per row by CASE: the same SQL on SQLite and PostgreSQL.
    bucket = case(*[(_events.c.received_at >= s, i) for i, s in reversed(list(enumerate(starts)))],
                  else_=-1)
    recent = and_(_events.c.account_id == account_id, _events.c.received_at >= starts[0])
    hour_ago = now - timedelta(hours=1)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    async with engine.connect() as conn:
        keys = dict((await conn.execute(select(_types.c.id, _types.c.key)
                                        .where(_types.c.account_id == account_id))).all())
        by_type: dict[int, TypeActivity] = {}
        rows = await conn.execute(
            select(_events.c.event_type_id, bucket.label("b"), func.count(),
                   func.sum(case((_events.c.received_at >= hour_ago, 1), else_=0)))
            .where(recent).group_by(_events.c.event_type_id, "b"))
        for type_id, b, n, last_hour in rows.all():
            activity = by_type.setdefault(type_id, TypeActivity(keys.get(type_id, "?")))
            if 0 <= b < HOURS:
                activity.hourly[b] += int(n)
                if starts[b] >= midnight:
                    activity.today += int(n)
            activity.last_hour += int(last_hour or 0)
        runs: dict[str, int] = dict((await conn.execute(
            select(_runs.c.status, func.count()).where(_runs.c.account_id == account_id)
            .group_by(_runs.c.status))).all())
        messages: dict[str, int] = dict((await conn.execute(
            select(_msgs.c.status, func.count()).where(_msgs.c.account_id == account_id)
            .group_by(_msgs.c.status))).all())
        total, pending, failed = (await conn.execute(select(
            func.count(),
            func.sum(case((_events.c.processed_at.is_(None), 1), else_=0)),
            func.sum(case((_events.c.process_error.is_not(None), 1), else_=0)))
            .where(_events.c.account_id == account_id))).one()
        due = (await conn.execute(select(func.count()).where(and_(
            _runs.c.account_id == account_id, _runs.c.status == "waiting",
            _runs.c.due_at <= now)))).scalar_one()
    return Overview(
        since=starts[0], types=sorted(by_type.values(), key=lambda a: a.key),
        runs_by_status={str(k): int(v) for k, v in runs.items()},
        messages_by_status={str(k): int(v) for k, v in messages.items()},
        events_total=int(total), events_pending=int(pending or 0),
        events_failed=int(failed or 0), runs_waiting=int(runs.get("waiting", 0)),
        runs_due=int(due))
