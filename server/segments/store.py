"""Segment definitions in storage: create, read, list, replace, delete, per account.

A new or replaced definition starts a full recount (``status`` "building", its progress
in ``build_processed`` / ``build_total``); the worker's segment loop carries it out
(``server.segments.recount``). Another account's segment is not found, never forbidden.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from server.contacts.tables import CONTACTS
from server.db.models import as_utc, id_is, utcnow
from server.errors import NotFound
from server.segments.definition import Definition, event_types_of, uses_contact, uses_zone
from server.segments.evaluate import Compiled, compile_conditions
from server.segments.tables import SEGMENT_CHANGES, SEGMENT_DUE, SEGMENT_MEMBERS, SEGMENTS
from server.workflows.durations import zone

__all__ = ["Segment", "account_segments", "create_segment", "delete_segment",
           "follow_account_zone", "get_segment", "list_segments", "recount_reading",
           "recount_reading_field", "require_segment", "segment_from_row", "update_segment"]


@dataclass(frozen=True, slots=True)
class Segment:
    id: int
    account_id: int
    name: str
    conditions: dict[str, Any]
    time_zone: str
    event_types: frozenset[str]
    uses_contact: bool
    version: int
    status: str
    build_total: int
    build_processed: int
    build_after: int
    created_at: datetime
    updated_at: datetime
    built_at: datetime | None
    # The conditions compiled once per version (cached with the segment, below).
    compiled: Compiled
    # Saved without a zone of its own: moves with the account's (``follow_account_zone``).
    follows_account: bool = False

    @property
    def tz(self) -> ZoneInfo | Any:
        return zone(self.time_zone) if self.time_zone != "UTC" else UTC

    def document(self) -> dict[str, Any]:
        return {"name": self.name, "conditions": self.conditions, "timeZone": self.time_zone}


def segment_from_row(row: Any) -> Segment:
    doc = orjson.loads(row.definition)
    return Segment(
        id=int(row.id), account_id=int(row.account_id), name=row.name,
        conditions=doc["conditions"], time_zone=doc.get("timeZone", "UTC"),
        event_types=frozenset(orjson.loads(row.event_types)),
        uses_contact=bool(row.uses_contact), version=int(row.version), status=row.status,
        build_total=int(row.build_total), build_processed=int(row.build_processed),
        build_after=int(row.build_after), created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        built_at=None if row.built_at is None else as_utc(row.built_at),
        compiled=compile_conditions(doc["conditions"]),
        follows_account=bool(doc.get(_FOLLOWS)))


async def _contact_count(conn: AsyncConnection, account_id: int) -> int:
    return int((await conn.execute(select(func.count()).select_from(CONTACTS)
                                   .where(CONTACTS.c.account_id == account_id))).scalar_one())


# Stored beside the document (never shown): the definition took the account's zone.
_FOLLOWS = "followsAccountZone"


def _values(definition: Definition) -> dict[str, Any]:
    doc = definition.document()
    if definition.follows_account:
        doc[_FOLLOWS] = True
    return {"name": definition.name,
            "definition": orjson.dumps(doc).decode(),
            "event_types": orjson.dumps(sorted(event_types_of(definition.conditions))).decode(),
            "uses_contact": uses_contact(definition.conditions)}


async def create_segment(conn: AsyncConnection, *, account_id: int, definition: Definition
                         ) -> int:
    now = utcnow()
    result = await conn.execute(insert(SEGMENTS).values(
        account_id=account_id, version=1, status="building",
        build_total=await _contact_count(conn, account_id), build_processed=0, build_after=0,
        created_at=now, updated_at=now, **_values(definition)).returning(SEGMENTS.c.id))
    return int(result.scalar_one())


async def update_segment(conn: AsyncConnection, *, account_id: int, segment_id: int,
                         definition: Definition) -> None:
    """A new version; its recount starts over (members stay until recounted)."""
    await require_segment(conn, account_id=account_id, segment_id=segment_id)
    await conn.execute(update(SEGMENTS).where(id_is(SEGMENTS.c.id, segment_id)).values(
        version=SEGMENTS.c.version + 1, status="building",
        build_total=await _contact_count(conn, account_id), build_processed=0, build_after=0,
        updated_at=utcnow(), **_values(definition)))


async def _recount(conn: AsyncConnection, *, account_id: int, segment_ids: list[int]) -> int:
    """Start these segments' recount over, same version: the definition is unchanged,
    only what it reads."""
    if segment_ids:
        await conn.execute(update(SEGMENTS).where(SEGMENTS.c.id.in_(segment_ids)).values(
            status="building", build_total=await _contact_count(conn, account_id),
            build_processed=0, build_after=0, updated_at=utcnow()))
    return len(segment_ids)


async def recount_reading(conn: AsyncConnection, *, account_id: int, type_key: str) -> int:
    """Start the recount of every segment of the account that reads ``type_key`` (its
    events stopped counting: segmentation switched off); how many."""
    rows = await conn.execute(select(SEGMENTS.c.id, SEGMENTS.c.event_types).where(
        SEGMENTS.c.account_id == account_id))
    ids = [int(r.id) for r in rows if type_key in orjson.loads(r.event_types)]
    return await _recount(conn, account_id=account_id, segment_ids=ids)


async def recount_reading_field(conn: AsyncConnection, *, account_id: int, field_id: int
                                ) -> int:
    """Start the recount of the segments reading additional field ``field_id`` (it was
    deleted with every contact's value of it); how many."""
    segments = await list_segments(conn, account_id=account_id)
    ids = [s.id for s in segments if field_id in s.compiled.extra_fields]
    return await _recount(conn, account_id=account_id, segment_ids=ids)


async def follow_account_zone(conn: AsyncConnection, *, account_id: int, time_zone: str
                              ) -> int:
    """The account's zone changed: the segments saved without a zone of their own take the
    new one as a new version, recounted when their conditions read the zone (calendar
    periods, date ranges); how many moved."""
    moved = 0
    for segment in await list_segments(conn, account_id=account_id):
        if not segment.follows_account or segment.time_zone == time_zone:
            continue
        definition = Definition(name=segment.name, conditions=segment.conditions,
                                time_zone=time_zone, follows_account=True)
        values: dict[str, Any] = {"version": SEGMENTS.c.version + 1, "updated_at": utcnow(),
                                  **_values(definition)}
        if uses_zone(segment.conditions):
            values.update(status="building", build_processed=0, build_after=0,
                          build_total=await _contact_count(conn, account_id))
        await conn.execute(update(SEGMENTS).where(SEGMENTS.c.id == segment.id).values(**values))
        moved += 1
    return moved


async def get_segment(conn: AsyncConnection, *, account_id: int, segment_id: int
                      ) -> Segment | None:
    row = (await conn.execute(select(SEGMENTS).where(
        id_is(SEGMENTS.c.id, segment_id) & (SEGMENTS.c.account_id == account_id)))).first()
    return None if row is None else segment_from_row(row)


async def require_segment(conn: AsyncConnection, *, account_id: int, segment_id: int
                          ) -> Segment:
    found = await get_segment(conn, account_id=account_id, segment_id=segment_id)
    if found is None:
        raise NotFound(f"no segment {segment_id} in this account")
    return found


async def list_segments(conn: AsyncConnection, *, account_id: int) -> list[Segment]:
    rows = await conn.execute(select(SEGMENTS).where(SEGMENTS.c.account_id == account_id)
                              .order_by(SEGMENTS.c.id))
    return [segment_from_row(r) for r in rows]


# Parsed definitions by (database, id, version): the hot path reads two columns, not the
# JSON, per batch (one process may serve several databases: tests do).
_PARSED: dict[tuple[str, int, int], Segment] = {}


async def account_segments(conn: AsyncConnection, *, account_id: int) -> list[Segment]:
    """Every segment of the account, definitions parsed once per version (their status
    and progress as of that parse: callers read only the definition)."""
    db = str(conn.engine.url)
    rows = (await conn.execute(select(SEGMENTS.c.id, SEGMENTS.c.version).where(
        SEGMENTS.c.account_id == account_id).order_by(SEGMENTS.c.id))).all()
    keys = [(db, int(r.id), int(r.version)) for r in rows]
    missing = [k[1] for k in keys if k not in _PARSED]
    if missing:
        if len(_PARSED) > 10_000:
            _PARSED.clear()
        for row in await conn.execute(select(SEGMENTS).where(SEGMENTS.c.id.in_(missing))):
            _PARSED[(db, int(row.id), int(row.version))] = segment_from_row(row)
    return [_PARSED[k] for k in keys if k in _PARSED]


async def delete_segment(conn: AsyncConnection, *, account_id: int, segment_id: int) -> None:
    await require_segment(conn, account_id=account_id, segment_id=segment_id)
    for table in (SEGMENT_MEMBERS, SEGMENT_DUE, SEGMENT_CHANGES):
        await conn.execute(delete(table).where(id_is(table.c.segment_id, segment_id)))
    await conn.execute(delete(SEGMENTS).where(id_is(SEGMENTS.c.id, segment_id)))
