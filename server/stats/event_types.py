"""Event types as the console lists them (counts, first and last seen) and one type's detail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from server.db.models import Event, EventType, as_utc, table_of
from server.errors import NotFound
from server.stats.shapes import ParamShape, param_shapes

_events = table_of(Event)
_types = table_of(EventType)
SAMPLE = 200


@dataclass(frozen=True, slots=True)
class TypeStats:
    id: int
    key: str
    created_at: datetime
    event_count: int
    first_seen: datetime | None
    last_seen: datetime | None
    create_contacts: bool


@dataclass(frozen=True, slots=True)
class TypeDetail:
    stats: TypeStats
    params: list[ParamShape]
    sampled: int


def _when(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


async def type_stats(engine: AsyncEngine, *, account_id: int, key: str = "") -> list[TypeStats]:
    """Every type of the account by key (or the one named ``key``)."""
    counts = (select(_events.c.event_type_id, func.count().label("n"),
                     func.min(_events.c.received_at).label("first"),
                     func.max(_events.c.received_at).label("last"))
              .where(_events.c.account_id == account_id)
              .group_by(_events.c.event_type_id).subquery())
    where = [_types.c.account_id == account_id]
    if key:
        where.append(_types.c.key == key)
    query = (select(_types.c.id, _types.c.key, _types.c.created_at, _types.c.create_contacts,
                    func.coalesce(counts.c.n, 0), counts.c.first, counts.c.last)
             .outerjoin(counts, counts.c.event_type_id == _types.c.id)
             .where(and_(*where)).order_by(_types.c.key))
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [TypeStats(id=int(i), key=k, created_at=as_utc(c), event_count=int(n),
                      first_seen=_when(first), last_seen=_when(last), create_contacts=bool(cc))
            for i, k, c, cc, n, first, last in rows]


async def type_detail(engine: AsyncEngine, *, account_id: int, key: str) -> TypeDetail:
    found = await type_stats(engine, account_id=account_id, key=key)
    if not found:
        raise NotFound(f"no event type {key!r} in this account")
    stats = found[0]
    async with engine.connect() as conn:
        bodies = (await conn.execute(
            select(_events.c.body).where(and_(_events.c.account_id == account_id,
                                              _events.c.event_type_id == stats.id))
            .order_by(_events.c.id.desc()).limit(SAMPLE))).scalars().all()
    return TypeDetail(stats=stats, params=param_shapes(list(bodies)), sampled=len(bodies))
