"""SQL building blocks of the contact stores, written once for SQLite and PostgreSQL.

The ``INSERT ... ON CONFLICT`` construct comes from ``server.db.dialect``; these helpers
batch their work so a bulk upsert costs a handful of statements, not one per contact.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final, TypeVar

from sqlalchemy import Table, and_, bindparam, delete, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from server.contacts.model import ContactData
from server.contacts.record import field_value_text
from server.contacts.tables import CONTACTS, FIELD_VALUES, PUSH_TOKENS
from server.db.dialect import on_conflict_insert

__all__ = [
    "UNIQUE_COLUMNS",
    "chunked",
    "conflicting_owner",
    "insert_ignoring_conflicts",
    "write_field_values",
    "write_push_tokens",
]

_c = CONTACTS
_values = FIELD_VALUES
_tokens = PUSH_TOKENS
UNIQUE_COLUMNS: Final = ("email_key", "phone", "external_customer_id", "contact_key")
# Well below SQLite's bound-parameter limit, and kind to PostgreSQL's planner.
CHUNK: Final = 500
T = TypeVar("T")


def chunked(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


async def insert_ignoring_conflicts(
    conn: AsyncConnection, *, table: Table, row: Mapping[str, Any], returning: Any
) -> Any:
    """Insert ``row``; the ``returning`` value, or ``None`` if a unique value was taken."""
    stmt = on_conflict_insert(conn, table).values(**row).on_conflict_do_nothing()
    return (await conn.execute(stmt.returning(returning))).scalar()


async def write_field_values(
    conn: AsyncConnection, *, account_id: int, changes: Sequence[tuple[int, ContactData]]
) -> None:
    """Store the given field values of each contact; a ``None`` value deletes the stored one."""
    upserts: list[dict[str, Any]] = []
    deletes: list[dict[str, Any]] = []
    for contact_id, data in changes:
        for field_id, value in data.fields.items():
            if value is None:
                deletes.append({"cid": contact_id, "fid": field_id})
            else:
                upserts.append({"contact_id": contact_id, "field_id": field_id,
                                "account_id": account_id, "value": field_value_text(value)})
    if upserts:
        stmt = on_conflict_insert(conn, _values)
        stmt = stmt.on_conflict_do_update(index_elements=[_values.c.contact_id, _values.c.field_id],
                                          set_={"value": stmt.excluded.value})
        await conn.execute(stmt, upserts)
    if deletes:
        await conn.execute(delete(_values).where(and_(_values.c.contact_id == bindparam("cid"),
                                                      _values.c.field_id == bindparam("fid"))),
                           deletes)


async def write_push_tokens(
    conn: AsyncConnection, *, account_id: int, changes: Sequence[tuple[int, ContactData]]
) -> None:
    """Replace each contact's push tokens. A token held by another contact moves to this one
    (a device belongs to whoever registered it last)."""
    owner: dict[str, int] = {}
    for contact_id, data in changes:
        for token in data.push_tokens:
            owner[token] = contact_id
    contact_ids = sorted({contact_id for contact_id, _ in changes})
    for part in chunked(contact_ids):
        await conn.execute(delete(_tokens).where(and_(_tokens.c.account_id == account_id,
                                                      _tokens.c.contact_id.in_(part))))
    tokens = list(owner)
    for token_part in chunked(tokens):
        await conn.execute(delete(_tokens).where(and_(_tokens.c.account_id == account_id,
                                                      _tokens.c.token.in_(token_part))))
    if tokens:
        await conn.execute(insert(_tokens), [
            {"account_id": account_id, "contact_id": contact_id, "token": token}
            for token, contact_id in owner.items()])


async def conflicting_owner(
    conn: AsyncConnection, *, account_id: int, contact_id: int, columns: Mapping[str, Any]
) -> tuple[str, int] | None:
    """A unique column whose new value another contact holds, and that contact's id."""
    wanted = {name: columns[name] for name in UNIQUE_COLUMNS if columns.get(name) is not None}
    if not wanted:
        return None
    query = (select(_c.c.id, *(_c.c[name] for name in wanted))
             .where(and_(_c.c.account_id == account_id, _c.c.id != contact_id,
                         or_(*(_c.c[name] == value for name, value in wanted.items()))))
             .limit(1))
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    for name, value in wanted.items():
        if getattr(row, name) == value:
            return name, int(row.id)
    return None
