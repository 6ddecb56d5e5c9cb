"""The recorded structure of an event type's params: for each top-level param name, how
many stored events carried it with a value of each JSON type.

Accepting an event notes each param's name and JSON type (``param_types``, a look-up per
param); the ingest writer adds a whole group commit's counts in the same transaction as
its events (``record``: one upsert statement, rows in key order), so the counts are
exactly the stored events', duplicates left out. A type records at most ``MAX_NAMES``
(name, type) pairs; names past that are not recorded (the writer keeps the pairs it knows
per type, read once per type and process).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.ext.asyncio import AsyncConnection

from server.db.dialect import on_conflict_insert
from server.db.models import EventTypeParam, table_of

__all__ = [
    "JSON_TYPES",
    "MAX_NAMES",
    "KnownPairs",
    "ParamTypes",
    "param_types",
    "record",
    "record_async",
]

MAX_NAMES = 200
# Rows per upsert statement: six bound values each, well under SQLite's 32766.
_ROWS_PER_STATEMENT = 1000
_params = table_of(EventTypeParam)
_TYPE_OF: dict[type, str] = {str: "string", int: "number", float: "number", bool: "boolean",
                             type(None): "null", dict: "object", list: "list"}
JSON_TYPES = ("string", "number", "boolean", "null", "object", "list")
# (name, JSON type) of each param of one event, in order.
ParamTypes = Sequence[Sequence[str]]
# Per event type id, the (name, JSON type) pairs already recorded.
KnownPairs = dict[int, set[tuple[str, str]]]


def param_types(params: Iterable[tuple[str, Any]]) -> tuple[tuple[str, str], ...]:
    out = []
    for name, value in params:
        kind = _TYPE_OF.get(type(value))
        if kind is None:
            kind = "object" if isinstance(value, dict) else "list"
        out.append((name, kind))
    return tuple(out)


def _counts(events: Iterable[tuple[int, ParamTypes]]) -> Counter[tuple[int, str, str]]:
    counts: Counter[tuple[int, str, str]] = Counter()
    for type_id, pairs in events:
        for name, kind in pairs:
            counts[(type_id, name, kind)] += 1
    return counts


def _within_limit(counts: Counter[tuple[int, str, str]], known: KnownPairs
                  ) -> list[tuple[int, str, str]]:
    keys = []
    for key in sorted(counts):
        type_id, name, kind = key
        pairs = known[type_id]
        if (name, kind) not in pairs:
            if len(pairs) >= MAX_NAMES:
                continue
            pairs.add((name, kind))
        keys.append(key)
    return keys


def _statement(conn: Connection | AsyncConnection, keys: list[tuple[int, str, str]],
               counts: Counter[tuple[int, str, str]], now: datetime) -> Any:
    insert = on_conflict_insert(conn, _params)
    return insert.values([
        {"event_type_id": t, "name": n, "json_type": k, "seen": counts[(t, n, k)],
         "first_seen_at": now, "last_seen_at": now} for t, n, k in keys
    ]).on_conflict_do_update(
        index_elements=["event_type_id", "name", "json_type"],
        set_={"seen": _params.c.seen + insert.excluded.seen,
              "last_seen_at": insert.excluded.last_seen_at})


def _load_query(type_ids: Iterable[int]) -> Any:
    return select(_params.c.event_type_id, _params.c.name, _params.c.json_type).where(
        _params.c.event_type_id.in_(sorted(type_ids)))


def _remember(known: KnownPairs, missing: Iterable[int], rows: Iterable[Any]) -> None:
    if len(known) > 100_000:
        known.clear()
    for type_id in missing:
        known[type_id] = set()
    for type_id, name, kind in rows:
        known[int(type_id)].add((name, kind))


def record(conn: Connection, events: Iterable[tuple[int, ParamTypes]], *, now: datetime,
           known: KnownPairs) -> None:
    """Add the params of stored events (type id, their param types) in ``conn``'s open
    transaction."""
    counts = _counts(events)
    if not counts:
        return
    missing = {t for t, _, _ in counts if t not in known}
    if missing:
        _remember(known, missing, conn.execute(_load_query(missing)))
    keys = _within_limit(counts, known)
    for start in range(0, len(keys), _ROWS_PER_STATEMENT):
        conn.execute(_statement(conn, keys[start:start + _ROWS_PER_STATEMENT], counts, now))


async def record_async(conn: AsyncConnection, events: Iterable[tuple[int, ParamTypes]], *,
                       now: datetime) -> None:
    """``record`` for a transaction of the async engine (an event a workflow launched)."""
    counts = _counts(events)
    if not counts:
        return
    known: KnownPairs = {}
    missing = {t for t, _, _ in counts}
    _remember(known, missing, await conn.execute(_load_query(missing)))
    keys = _within_limit(counts, known)
    for start in range(0, len(keys), _ROWS_PER_STATEMENT):
        await conn.execute(_statement(conn, keys[start:start + _ROWS_PER_STATEMENT], counts,
                                      now))
