"""Static groups: named lists of contacts that callers add contacts to by name.

eSputnik's subscription form and bulk import take ``groups`` / ``groupNames``: segment
names a contact joins, created when missing. Condition-based segments live elsewhere;
these are the "Static" kind: membership changes only when a caller says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Final

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Table,
    UniqueConstraint,
    and_,
    delete,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import Field, SQLModel

from server.contacts.group_names import MAX_GROUP_NAME, parse_group_names
from server.contacts.sql import chunked
from server.db.dialect import on_conflict_insert
from server.db.models import _ts, table_of, utcnow

__all__ = [
    "GROUPS",
    "GROUP_MEMBERS",
    "MAX_GROUP_NAME",
    "STATIC_GROUP_IDS",
    "add_to_groups",
    "forget_memberships",
    "group_members",
    "groups_of",
    "list_groups",
    "parse_group_names",
    "remove_from_groups",
]


# eSputnik has one id space for its groups (static and dynamic): /api/v1/groups lists both
# and /api/v1/group/{id}/contacts takes either. Segments (our dynamic groups) keep their own
# ids; a static group is known outside by its row id plus this (docs/compatibility.md).
STATIC_GROUP_IDS: Final = 1_000_000_000


class ContactGroupRow(SQLModel, table=True):
    __tablename__ = "contact_groups"
    __table_args__ = (UniqueConstraint("account_id", "name", name="uq_contact_groups_name"),)
    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="accounts.id")
    name: str = Field(max_length=MAX_GROUP_NAME)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class ContactGroupMemberRow(SQLModel, table=True):
    __tablename__ = "contact_group_members"
    group_id: int = Field(foreign_key="contact_groups.id", primary_key=True)
    contact_id: int = Field(sa_column=Column(
        BigInteger, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True))
    account_id: int = Field(foreign_key="accounts.id", index=True)
    added_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


GROUPS: Table = table_of(ContactGroupRow)
GROUP_MEMBERS: Table = table_of(ContactGroupMemberRow)
_g, _m = GROUPS, GROUP_MEMBERS


async def _group_ids(conn: AsyncConnection, *, account_id: int, names: Sequence[str]
                     ) -> dict[str, int]:
    """The ids of the named groups, creating the missing ones."""
    if not names:
        return {}
    now = utcnow()
    await conn.execute(on_conflict_insert(conn, _g).values(
        [{"account_id": account_id, "name": n, "created_at": now} for n in names])
        .on_conflict_do_nothing())
    rows = await conn.execute(select(_g.c.name, _g.c.id).where(
        and_(_g.c.account_id == account_id, _g.c.name.in_(list(names)))))
    return {row.name: int(row.id) for row in rows}


async def add_to_groups(conn: AsyncConnection, *, account_id: int, contact_ids: Iterable[int],
                        names: Sequence[str]) -> None:
    """Make each contact a member of each named group (created when missing)."""
    ids = await _group_ids(conn, account_id=account_id, names=names)
    rows = [{"group_id": gid, "contact_id": cid, "account_id": account_id, "added_at": utcnow()}
            for cid in sorted(set(contact_ids)) for gid in ids.values()]
    for part in chunked(rows):
        await conn.execute(on_conflict_insert(conn, _m).values(list(part)).on_conflict_do_nothing())


async def remove_from_groups(conn: AsyncConnection, *, account_id: int,
                             contact_ids: Iterable[int], names: Sequence[str]) -> None:
    """Take each contact out of each named group (a group that does not exist is none)."""
    if not names:
        return
    rows = await conn.execute(select(_g.c.id).where(
        and_(_g.c.account_id == account_id, _g.c.name.in_(list(names)))))
    group_ids = [int(i) for i in rows.scalars()]
    if not group_ids:
        return
    for part in chunked(sorted(set(contact_ids))):
        await conn.execute(delete(_m).where(and_(
            _m.c.account_id == account_id, _m.c.group_id.in_(group_ids),
            _m.c.contact_id.in_(part))))


_ROW_ID_MAX = 2**31 - 1  # contact_groups.id is a 32-bit INTEGER on PostgreSQL


def public_group_id(row_id: int) -> int:
    return STATIC_GROUP_IDS + row_id


async def list_groups(conn: AsyncConnection, *, account_id: int) -> list[tuple[int, str]]:
    """The account's static groups as (public id, name), oldest first."""
    rows = await conn.execute(select(_g.c.id, _g.c.name).where(_g.c.account_id == account_id)
                              .order_by(_g.c.id))
    return [(public_group_id(int(row.id)), row.name) for row in rows]


async def group_members(conn: AsyncConnection, *, account_id: int, group_id: int, offset: int,
                        limit: int) -> tuple[list[int], int] | None:
    """A page of the static group's contact ids (by id) and how many it has; None when
    ``group_id`` (public) names no static group of the account."""
    row_id = group_id - STATIC_GROUP_IDS
    if not 0 < row_id <= _ROW_ID_MAX:  # beyond the INTEGER column: no such group, not a DB error
        return None
    found = (await conn.execute(select(_g.c.id).where(and_(
        _g.c.account_id == account_id, _g.c.id == row_id)))).first()
    if found is None:
        return None
    mine = and_(_m.c.account_id == account_id, _m.c.group_id == row_id)
    total = (await conn.execute(select(func.count()).select_from(_m).where(mine))).scalar_one()
    ids = (await conn.execute(select(_m.c.contact_id).where(mine).order_by(_m.c.contact_id)
                              .offset(offset).limit(limit))).scalars()
    return [int(i) for i in ids], int(total)


async def groups_of(conn: AsyncConnection, *, account_id: int, contact_ids: Sequence[int]
                    ) -> dict[int, list[tuple[int, str]]]:
    """Each contact's static groups as (public id, name), by group id."""
    out: dict[int, list[tuple[int, str]]] = {}
    for part in chunked(sorted(set(contact_ids))):
        rows = await conn.execute(
            select(_m.c.contact_id, _g.c.id, _g.c.name).join(_g, _g.c.id == _m.c.group_id)
            .where(and_(_m.c.account_id == account_id, _m.c.contact_id.in_(part)))
            .order_by(_g.c.id))
        for row in rows:
            out.setdefault(int(row.contact_id), []).append((public_group_id(int(row.id)),
                                                            row.name))
    return out


async def forget_memberships(conn: AsyncConnection, *, account_id: int, contact_id: int) -> None:
    """Remove the contact from every group (its deletion or erasure)."""
    await conn.execute(delete(_m).where(and_(_m.c.account_id == account_id,
                                             _m.c.contact_id == contact_id)))
