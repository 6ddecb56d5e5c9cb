"""Contacts deleted earlier: what eSputnik's ``restoreDeleted`` decides about.

eSputnik keeps a deleted contact, and a bulk import skips it unless the import says
``restoreDeleted: true``. Our deletion removes the contact row, so a plain delete (not an
erasure) leaves a tombstone here: the contact's old id and its identifiers. A bulk import
whose entry names no live contact but a tombstone's key reports that entry ``DELETED``
(nothing written) unless it restores; restoring drops the tombstone. Erasure leaves none
and removes any the person had: an erased contact is forgotten, so it imports as new.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import BigInteger, Column, Index, Table, Text, and_, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import Field, SQLModel

from server.contacts.sql import chunked
from server.db.dialect import BIGINT_PK
from server.db.models import _ts, as_utc, table_of, utcnow

__all__ = ["DELETED", "DELETED_CONTACTS", "Tombstone", "forget_deleted", "remember_deleted",
           "tombstones"]

# The bulk result of an entry that names a deleted contact and does not restore it.
DELETED: Final = "DELETED"
# The identifier columns a tombstone keeps (those of ``contacts`` a bulk dedupes on).
KEYS: Final = ("email_key", "phone", "external_customer_id", "contact_key")


class DeletedContactRow(SQLModel, table=True):
    __tablename__ = "deleted_contacts"
    __table_args__ = tuple(Index(f"ix_deleted_contacts_{k}", "account_id", k) for k in KEYS)
    id: int | None = Field(default=None, sa_column=Column(BIGINT_PK, primary_key=True))
    account_id: int = Field(foreign_key="accounts.id")
    contact_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    email_key: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    phone: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    external_customer_id: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    contact_key: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    deleted_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


DELETED_CONTACTS: Table = table_of(DeletedContactRow)
_d = DELETED_CONTACTS


class Tombstone:
    """One deleted contact a key names: its old id and when it went."""

    __slots__ = ("contact_id", "deleted_at")

    def __init__(self, contact_id: int, deleted_at: datetime) -> None:
        self.contact_id = contact_id
        self.deleted_at = deleted_at


async def remember_deleted(conn: AsyncConnection, *, account_id: int, contact_id: int,
                           keys: Mapping[str, Any]) -> None:
    """Leave the tombstone of a contact deleted in the caller's transaction (``keys``:
    its ``KEYS`` columns as stored); a contact without identifiers leaves none."""
    row = {k: keys.get(k) for k in KEYS}
    if all(v is None for v in row.values()):
        return
    await conn.execute(insert(_d).values(account_id=account_id, contact_id=contact_id,
                                         deleted_at=utcnow(), **row))


async def tombstones(conn: AsyncConnection, *, account_id: int, column: str,
                     keys: Sequence[Any]) -> dict[Any, Tombstone]:
    """The latest tombstone each key of ``column`` names (keys naming none are absent)."""
    found: dict[Any, Tombstone] = {}
    if column not in KEYS:
        return found
    for part in chunked(sorted(set(keys), key=str)):
        rows = await conn.execute(select(_d.c[column], _d.c.contact_id, _d.c.deleted_at).where(
            and_(_d.c.account_id == account_id, _d.c[column].in_(part))).order_by(_d.c.id))
        for key, contact_id, deleted_at in rows.all():
            found[key] = Tombstone(int(contact_id), as_utc(deleted_at))
    return found


async def forget_deleted(conn: AsyncConnection, *, account_id: int,
                         keys: Iterable[tuple[str, Any]]) -> None:
    """Drop the tombstones holding any of these ``(column, value)`` keys."""
    by_column: dict[str, set[Any]] = {}
    for column, value in keys:
        if column in KEYS and value is not None:
            by_column.setdefault(column, set()).add(value)
    for column, values in by_column.items():
        for part in chunked(sorted(values, key=str)):
            await conn.execute(delete(_d).where(and_(_d.c.account_id == account_id,
                                                     _d.c[column].in_(part))))
