"""The body of one group-commit transaction, as plain synchronous SQLAlchemy Core.

Synchronous so that the whole transaction runs in the writer's own thread (or the writer
process) in one hand-off; an async driver pays a thread round trip per statement, cursor
and fetch. The rows go in through the database's cheapest bulk insert (``dialect``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, select, tuple_

from server.db.dialect import backend_of, on_conflict_insert
from server.db.models import Event, EventType, MessageId, table_of
from server.eventtypes import shapes
from server.ingest.model import ValidEvent, WriteResult

_events = table_of(Event)
_types = table_of(EventType)
_msgids = table_of(MessageId)
DEDUP_WINDOW = timedelta(hours=24)
TypeIds = dict[tuple[int, str], int]


def write_events(conn: Connection, events: list[ValidEvent], *, now: datetime,
                 type_cache: TypeIds, param_cache: shapes.KnownPairs | None = None
                 ) -> list[WriteResult]:
    """Store the events in the open transaction of ``conn``; one result per event, in order,
    and add the stored ones' params to their types' recorded structure.

    ``type_cache`` keeps event type ids across transactions; clear it after a failure.
    ``param_cache`` keeps the recorded (name, type) pairs per type (``shapes.record``).
    """
    type_ids = _type_ids_for(conn, events, now, type_cache)
    dup_of, first_of = _dedupe(conn, events, now)
    rows: list[dict[str, Any]] = []
    row_index: list[int] = []
    for i, ev in enumerate(events):
        if i in dup_of or i in first_of:
            continue
        rows.append(_row(ev, type_ids, now))
        row_index.append(i)
    ids = backend_of(conn).insert_returning_ids(conn, _events, rows) if rows else []
    event_id: dict[int, int] = dict(zip(row_index, ids))
    msg_rows = [{"account_id": ev.account_id, "message_id": ev.message_id,
                 "event_id": event_id[i], "created_at": now}
                for i, ev in enumerate(events) if ev.message_id and i in event_id]
    if msg_rows:
        conn.execute(_msgids.insert(), msg_rows)
    shapes.record(conn, ((rows[j]["event_type_id"], events[i].param_types)
                         for j, i in enumerate(row_index)),
                  now=now, known=param_cache if param_cache is not None else {})
    out: list[WriteResult] = []
    for i in range(len(events)):
        if i in event_id:
            out.append(WriteResult(event_id[i]))
        elif i in first_of:
            out.append(WriteResult(event_id[first_of[i]], duplicate=True))
        else:
            out.append(WriteResult(dup_of[i], duplicate=True))
    return out


def _row(ev: ValidEvent, type_ids: TypeIds, now: datetime) -> dict[str, Any]:
    past = ev.occurred is not None
    return {
        "account_id": ev.account_id,
        "event_type_id": type_ids[(ev.account_id, ev.event_type_key)],
        "key_value": ev.key_value,
        "body": ev.body,
        "message_id": ev.message_id,
        "received_at": now,
        "occurred_at": ev.occurred,
        # Past events are processed too (contact, segments); the workers start no
        # workflow for them (``is_past``).
        "processed_at": None,
        "is_past": past,
    }


def _dedupe(conn: Connection, events: list[ValidEvent], now: datetime
            ) -> tuple[dict[int, int], dict[int, int]]:
    """Map batch positions to an earlier event: stored ones, then earlier in the batch."""
    wanted = {(ev.account_id, ev.message_id) for ev in events if ev.message_id}
    dup_of: dict[int, int] = {}
    first_of: dict[int, int] = {}
    if not wanted:
        return dup_of, first_of
    keys = list(wanted)
    # Written first, so SQLite takes its write lock before reading (no upgrade race).
    conn.execute(delete(_msgids).where(and_(
        tuple_(_msgids.c.account_id, _msgids.c.message_id).in_(keys),
        _msgids.c.created_at <= now - DEDUP_WINDOW)))
    found = conn.execute(
        select(_msgids.c.account_id, _msgids.c.message_id, _msgids.c.event_id)
        .where(tuple_(_msgids.c.account_id, _msgids.c.message_id).in_(keys)))
    stored = {(a, m): int(e) for a, m, e in found}
    first_pos: dict[tuple[int, str], int] = {}
    for i, ev in enumerate(events):
        if not ev.message_id:
            continue
        key = (ev.account_id, ev.message_id)
        if key in stored:
            dup_of[i] = stored[key]
        elif key in first_pos:
            first_of[i] = first_pos[key]
        else:
            first_pos[key] = i
    return dup_of, first_of


def _type_ids_for(conn: Connection, events: list[ValidEvent], now: datetime,
                  cache: TypeIds) -> TypeIds:
    needed = {(ev.account_id, ev.event_type_key) for ev in events}
    missing = [k for k in needed if k not in cache]
    if missing:
        # ON CONFLICT makes concurrent first events of a type create it exactly once.
        conn.execute(on_conflict_insert(conn, _types)
                     .on_conflict_do_nothing(index_elements=["account_id", "key"]),
                     [{"account_id": a, "key": k, "create_contacts": True, "created_at": now}
                      for a, k in missing])
        found = conn.execute(
            select(_types.c.account_id, _types.c.key, _types.c.id)
            .where(tuple_(_types.c.account_id, _types.c.key).in_(missing)))
        if len(cache) > 100_000:
            cache.clear()
        for a, k, type_id in found:
            cache[(a, k)] = int(type_id)
    return {k: cache[k] for k in needed}
