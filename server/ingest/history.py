"""Reading the event history and event types of one account."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from server.db.models import Event, EventType, as_utc, table_of
from server.errors import InvalidArgument, NotFound, Violation
from server.eventtypes.settings import TypeSettings
from server.eventtypes.store import settings_of

_events = table_of(Event)
_types = table_of(EventType)
MAX_PAGE = 1000
DEFAULT_PAGE = 100


@dataclass(frozen=True, slots=True)
class StoredEventRow:
    id: int
    event_type_key: str
    key_value: str
    body: str
    received_at: datetime
    occurred_at: datetime | None
    contact_id: int | None
    # JSON [{"status", "field", "message"}] or None (``server.contacts.identity.IdentityNote``).
    identity_notes: str | None = None

    @property
    def doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = orjson.loads(self.body)
        return doc

    @property
    def notes(self) -> list[dict[str, str]]:
        notes: list[dict[str, str]] = orjson.loads(self.identity_notes or "[]")
        return notes


@dataclass(frozen=True, slots=True)
class EventTypeRow:
    id: int
    key: str
    created_at: datetime
    event_count: int
    settings: TypeSettings


def _row(r: Any) -> StoredEventRow:
    return StoredEventRow(
        id=int(r.id), event_type_key=r.key, key_value=r.key_value, body=r.body,
        received_at=as_utc(r.received_at),
        occurred_at=as_utc(r.occurred_at) if r.occurred_at is not None else None,
        contact_id=r.contact_id, identity_notes=r.identity_notes)


_COLUMNS = (_events.c.id, _types.c.key, _events.c.key_value, _events.c.body,
            _events.c.received_at, _events.c.occurred_at, _events.c.contact_id,
            _events.c.identity_notes)


async def get_event(engine: AsyncEngine, *, account_id: int, event_id: int) -> StoredEventRow:
    async with engine.connect() as conn:
        r = (await conn.execute(
            select(*_COLUMNS).join(_types, _types.c.id == _events.c.event_type_id)
            .where(and_(_events.c.id == event_id, _events.c.account_id == account_id))
        )).first()
    if r is None:
        raise NotFound(f"no event with id {event_id} in this account")
    return _row(r)


def _decode_token(token: str) -> int:
    try:
        value = int(base64.urlsafe_b64decode(token.encode() + b"==").decode())
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument.from_violations(
            [Violation("pageToken", "is not a token this server issued; start without it")]
        ) from None
    return value


def _encode_token(last_id: int) -> str:
    return base64.urlsafe_b64encode(str(last_id).encode()).decode().rstrip("=")


async def list_events(
    engine: AsyncEngine, *, account_id: int, event_type_key: str = "", key_value: str = "",
    since: datetime | None = None, until: datetime | None = None, page_size: int = 0,
    page_token: str = "", contact_id: int = 0,
) -> tuple[list[StoredEventRow], str]:
    """Newest first; ``page_token`` continues after the last id of the previous page."""
    if page_size < 0 or page_size > MAX_PAGE:
        raise InvalidArgument.from_violations(
            [Violation("pageSize", f"must be between 1 and {MAX_PAGE}")])
    size = page_size or DEFAULT_PAGE
    cond = [_events.c.account_id == account_id]
    if event_type_key:
        cond.append(_types.c.key == event_type_key)
    if key_value:
        cond.append(_events.c.key_value == key_value)
    if contact_id:
        cond.append(_events.c.contact_id == contact_id)
    if since is not None:
        cond.append(_events.c.received_at >= since)
    if until is not None:
        cond.append(_events.c.received_at < until)
    if page_token:
        cond.append(_events.c.id < _decode_token(page_token))
    query = (select(*_COLUMNS).join(_types, _types.c.id == _events.c.event_type_id)
             .where(and_(*cond)).order_by(_events.c.id.desc()).limit(size + 1))
    async with engine.connect() as conn:
        rows = [_row(r) for r in (await conn.execute(query)).all()]
    next_token = _encode_token(rows[size - 1].id) if len(rows) > size else ""
    return rows[:size], next_token


async def list_event_types(engine: AsyncEngine, *, account_id: int) -> list[EventTypeRow]:
    counts = (select(_events.c.event_type_id, func.count().label("n"))
              .where(_events.c.account_id == account_id)
              .group_by(_events.c.event_type_id).subquery())
    query = (select(_types.c.id, _types.c.key, _types.c.created_at,
                    func.coalesce(counts.c.n, 0).label("n"), _types.c.segmentation,
                    _types.c.segmentation_since, _types.c.create_contacts,
                    _types.c.validate_params)
             .outerjoin(counts, counts.c.event_type_id == _types.c.id)
             .where(_types.c.account_id == account_id).order_by(_types.c.key))
    async with engine.connect() as conn:
        return [EventTypeRow(int(r.id), r.key, as_utc(r.created_at), int(r.n), settings_of(r))
                for r in (await conn.execute(query)).all()]
