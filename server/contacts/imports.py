"""Bulk import sessions: what one ``POST /api/v1/contacts`` wrote, kept to be read back.

eSputnik answers a bulk import with an ``asyncSessionId`` and reports its state at
``GET /api/v1/importstatus/{sessionId}``. Our imports are written before the call
answers, so a session is born ``FINISHED``: its row, with every per-contact result, is
inserted in the transaction that wrote the contacts, and reads back for its account only,
for ``KEEP`` (results can name addresses; each new import drops the account's older ones).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import orjson
from sqlalchemy import Column, Index, Table, Text, and_, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import Field, SQLModel

from server.contacts.bulk import BulkResult
from server.db.models import _ts, as_utc, table_of, utcnow

__all__ = ["FINISHED", "IMPORTS", "KEEP", "ImportSession", "erase_from_imports", "load_import",
           "record_import"]

FINISHED: Final = "FINISHED"
KEEP: Final = timedelta(days=7)
# Session ids are this many random bytes as hex: not guessable, so not enumerable.
_ID_BYTES: Final = 16


class ContactImportRow(SQLModel, table=True):
    __tablename__ = "contact_imports"
    __table_args__ = (Index("ix_contact_imports_account", "account_id", "created_at"),)
    session_id: str = Field(primary_key=True, max_length=64)
    account_id: int = Field(foreign_key="accounts.id")
    status: str = Field(max_length=20)
    # The per-contact results as JSON: [{"index", "status", "id", "errors"}].
    results: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


IMPORTS: Table = table_of(ContactImportRow)
_i = IMPORTS


@dataclass(frozen=True, kw_only=True)
class ImportSession:
    session_id: str
    status: str
    results: tuple[BulkResult, ...]
    created_at: datetime


async def record_import(conn: AsyncConnection, *, account_id: int,
                        results: Sequence[BulkResult]) -> str:
    """Store a finished import's results in the caller's transaction; its session id."""
    session_id = secrets.token_hex(_ID_BYTES)
    now = utcnow()
    await conn.execute(delete(_i).where(and_(_i.c.account_id == account_id,
                                             _i.c.created_at < now - KEEP)))
    rows = [{"index": r.index, "status": r.status, "id": r.contact_id, "errors": list(r.errors)}
            for r in results]
    await conn.execute(insert(_i).values(session_id=session_id, account_id=account_id,
                                         status=FINISHED, results=orjson.dumps(rows).decode(),
                                         created_at=now))
    return session_id


async def load_import(conn: AsyncConnection, *, account_id: int, session_id: str
                      ) -> ImportSession | None:
    """The account's import session, or None (unknown, or another account's)."""
    row = (await conn.execute(select(_i).where(and_(
        _i.c.account_id == account_id, _i.c.session_id == session_id,
        _i.c.created_at >= utcnow() - KEEP)))).first()
    if row is None:
        return None
    results = tuple(BulkResult(index=r["index"], status=r["status"], contact_id=r["id"],
                               errors=tuple(r["errors"])) for r in orjson.loads(row.results))
    return ImportSession(session_id=row.session_id, status=row.status, results=results,
                         created_at=as_utc(row.created_at))


async def erase_from_imports(conn: AsyncConnection, *, account_id: int, contact_id: int,
                             identifiers: Sequence[str], erased: str) -> None:
    """An erased contact leaves the account's import sessions: its results keep their
    status but name no contact, and its identifiers (an address another entry's error
    quotes, say) are replaced by ``erased`` in every result's errors."""
    needles = [n for n in identifiers if n]
    rows = (await conn.execute(select(_i.c.session_id, _i.c.results).where(
        _i.c.account_id == account_id))).all()
    for session_id, text in rows:
        entries = orjson.loads(text)
        changed = False
        for entry in entries:
            if entry.get("id") == contact_id:
                entry["id"], changed = None, True
            errors = []
            for error in entry.get("errors") or []:
                scrubbed = error
                for needle in needles:
                    scrubbed = _replace_folded(scrubbed, needle, erased)
                changed |= scrubbed != error
                errors.append(scrubbed)
            entry["errors"] = errors
        if changed:
            await conn.execute(update(_i).where(_i.c.session_id == session_id)
                               .values(results=orjson.dumps(entries).decode()))


def _replace_folded(text: str, needle: str, by: str) -> str:
    """``text`` with every case-insensitive occurrence of ``needle`` replaced."""
    folded, low = text.lower(), needle.lower()
    out, start = [], 0
    while (at := folded.find(low, start)) >= 0:
        out += [text[start:at], by]
        start = at + len(needle)
    return "".join(out) + text[start:]
