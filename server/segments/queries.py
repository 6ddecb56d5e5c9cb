"""Who is in a segment: members paged in contact id order (with their email), one member,
the count. Each reads ``segment_members`` by its primary key (segment_id, contact_id)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from server.contacts.tables import CONTACTS
from server.db.models import as_utc, id_is
from server.segments.tables import SEGMENT_MEMBERS

__all__ = ["Member", "count_members", "get_member", "is_member", "list_members"]

_M = SEGMENT_MEMBERS


@dataclass(frozen=True, slots=True)
class Member:
    contact_id: int
    email: str | None
    entered_at: datetime


async def list_members(conn: AsyncConnection, *, segment_id: int, offset: int, limit: int
                       ) -> list[Member]:
    rows = await conn.execute(
        select(_M.c.contact_id, _M.c.entered_at, CONTACTS.c.email)
        .join(CONTACTS, CONTACTS.c.id == _M.c.contact_id)
        .where(id_is(_M.c.segment_id, segment_id))
        .order_by(_M.c.contact_id).offset(offset).limit(limit))
    return [Member(int(r.contact_id), r.email, as_utc(r.entered_at)) for r in rows]


async def get_member(conn: AsyncConnection, *, segment_id: int, contact_id: int
                     ) -> Member | None:
    row = (await conn.execute(
        select(_M.c.contact_id, _M.c.entered_at, CONTACTS.c.email)
        .join(CONTACTS, CONTACTS.c.id == _M.c.contact_id)
        .where(id_is(_M.c.segment_id, segment_id) & id_is(_M.c.contact_id, contact_id)))).first()
    return None if row is None else Member(int(row.contact_id), row.email,
                                           as_utc(row.entered_at))


async def count_members(conn: AsyncConnection, *, segment_id: int) -> int:
    return int((await conn.execute(select(func.count()).select_from(_M).where(
        id_is(_M.c.segment_id, segment_id)))).scalar_one())


async def is_member(conn: AsyncConnection, *, segment_id: int, contact_id: int) -> bool:
    """For the workflow condition "contact is in segment"."""
    return (await conn.execute(select(_M.c.contact_id).where(
        id_is(_M.c.segment_id, segment_id) & id_is(_M.c.contact_id, contact_id)))).first() \
        is not None
