"""API-sent message rows: written per recipient, read by the worker, reported by request id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.contacts.sql import chunked
from server.db.models import as_utc, utcnow
from server.messaging.tables import API_MESSAGES

__all__ = [
    "MessageLog",
    "NewMessage",
    "StoredMessage",
    "due_messages",
    "erase_recipient",
    "insert_messages",
    "load_message",
    "messages_by_request",
]

_m = API_MESSAGES


@dataclass(frozen=True, slots=True)
class NewMessage:
    request_id: str
    kind: str
    template_id: int | None
    recipient: str
    contact_id: int | None
    content: dict[str, Any]
    sender: str
    transactional: bool
    meta: dict[str, Any]
    refused: str | None = None


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    account_id: int
    request_id: str
    kind: str
    template_id: int | None
    recipient: str
    contact_id: int | None
    content: dict[str, Any]
    sender: str
    transactional: bool
    meta: dict[str, Any]
    status: str
    reason: str | None
    message_id: str
    attempts: int
    sent_at: datetime | None


def _stored(row: Any) -> StoredMessage:
    return StoredMessage(
        id=int(row.id), account_id=int(row.account_id), request_id=row.request_id,
        kind=row.kind, template_id=row.template_id, recipient=row.recipient,
        contact_id=row.contact_id, content=orjson.loads(row.content), sender=row.sender,
        transactional=bool(row.transactional), meta=orjson.loads(row.meta), status=row.status,
        reason=row.reason, message_id=row.message_id, attempts=int(row.attempts),
        sent_at=None if row.sent_at is None else as_utc(row.sent_at))


async def insert_messages(conn: AsyncConnection, *, account_id: int,
                          messages: Sequence[NewMessage], domain: str) -> list[int]:
    """Store the messages (``failed`` when refused up front); their row ids in order.
    Each gets a Message-ID ``<api.ACCOUNT.ROW@domain>`` that every try of it keeps."""
    now = utcnow()
    ids: list[int] = []
    for message in messages:
        row_id = (await conn.execute(insert(_m).values(
            account_id=account_id, request_id=message.request_id, kind=message.kind,
            template_id=message.template_id, recipient=message.recipient,
            contact_id=message.contact_id, content=orjson.dumps(message.content).decode(),
            sender=message.sender, transactional=message.transactional,
            meta=orjson.dumps(message.meta).decode(),
            status="failed" if message.refused else "queued", reason=message.refused,
            message_id="", attempts=0, created_at=now, updated_at=now,
        ).returning(_m.c.id))).scalar_one()
        ids.append(int(row_id))
    for row_id in ids:
        await conn.execute(update(_m).where(_m.c.id == row_id)
                           .values(message_id=f"<api.{account_id}.{row_id}@{domain}>"))
    return ids


async def load_message(conn: AsyncConnection, message_id: int) -> StoredMessage | None:
    row = (await conn.execute(select(_m).where(_m.c.id == message_id))).first()
    return None if row is None else _stored(row)


async def messages_by_request(conn: AsyncConnection, *, account_id: int,
                              request_ids: Sequence[str]) -> list[StoredMessage]:
    """The account's messages with these request ids, in the order asked."""
    found: dict[str, StoredMessage] = {}
    for part in chunked(sorted(set(request_ids))):
        rows = await conn.execute(select(_m).where(and_(_m.c.account_id == account_id,
                                                        _m.c.request_id.in_(part))))
        found.update({row.request_id: _stored(row) for row in rows})
    return [found[r] for r in request_ids if r in found]


async def due_messages(conn: AsyncConnection, *, before: datetime, limit: int = 1000
                       ) -> list[int]:
    """Queued messages untouched since ``before``: their job may have been lost."""
    rows = await conn.execute(select(_m.c.id).where(and_(
        _m.c.status == "queued", _m.c.updated_at < before)).order_by(_m.c.id).limit(limit))
    return [int(r) for r in rows.scalars()]


async def erase_recipient(conn: AsyncConnection, *, account_id: int, contact_id: int,
                          email: str | None, erased: str) -> None:
    """An erased contact's API-sent messages keep their outcome only: the address becomes
    ``erased``, the template data and given content go, and a letter not sent yet is
    ``failed`` (it has nobody to go to any more)."""
    mine = [_m.c.contact_id == contact_id]
    if email is not None:
        mine.append(func.lower(_m.c.recipient) == email.lower())
    where = and_(_m.c.account_id == account_id, or_(*mine))
    now = utcnow()
    await conn.execute(update(_m).where(and_(where, _m.c.status == "queued")).values(
        status="failed", reason="the recipient was erased before the letter was sent",
        updated_at=now))
    await conn.execute(update(_m).where(where).values(
        recipient=erased, contact_id=None, content="{}", updated_at=now))


class MessageLog:
    """The ``DeliveryLog`` of one API-sent message: its own row is the record."""

    def __init__(self, engine: AsyncEngine, message_id: int) -> None:
        self._engine = engine
        self._id = message_id

    async def open(self) -> tuple[str, str | None] | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(_m.c.status, _m.c.reason)
                                      .where(_m.c.id == self._id))).one()
        return None if row.status == "queued" else (row.status, row.reason)

    async def close(self, *, status: str, reason: str | None = None) -> None:
        now = utcnow()
        values: dict[str, Any] = {"status": status, "reason": reason, "updated_at": now,
                                  "attempts": _m.c.attempts + 1}
        if status == "sent":
            values["sent_at"] = now
        async with self._engine.begin() as conn:
            await conn.execute(update(_m).where(_m.c.id == self._id).values(**values))
