"""Bulk insert of event rows, answering their ids in row order, the cheapest way per database.

SQLite: one multi-row ``INSERT .. VALUES (..), (..)`` per chunk with values the column
types would bind anyway, then ``last_insert_rowid()``. The writer holds SQLite's write
lock for the whole transaction and each new row takes ``max(id) + 1``, so the ids are the
consecutive run ending there. Not ``executemany``: it steps each row separately, giving
up the GIL and waiting to get it back every time, and with the event loop busy in the
other thread that wait was up to the 5 ms switch interval per row. PostgreSQL: one multi-row ``INSERT .. RETURNING id``
(SQLAlchemy's insertmanyvalues); a sequence only grows, so sorted ids follow row order.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import exc as exc_mod
from sqlalchemy.engine import Dialect

from server.db.models import Event, table_of

_events = table_of(Event)
COLUMNS = ("account_id", "event_type_id", "key_value", "body", "message_id", "received_at",
           "occurred_at", "processed_at", "is_past")
_sql_cache: dict[str, tuple[str, Callable[[Any], Any]]] = {}
# SQLite allows 32766 bound variables per statement; 9 per row.
ROWS_PER_STATEMENT = 1000


def _sqlite_statement(dialect: Dialect) -> tuple[str, Callable[[Any], Any]]:
    """The positional INSERT text and the DateTime bind processor, compiled once."""
    cached = _sql_cache.get(dialect.name)
    if cached is None:
        stmt = _events.insert().values({c: None for c in COLUMNS})
        sql = str(stmt.compile(dialect=dialect))
        # The compiled text names :params in COLUMNS order; pysqlite wants "?" markers.
        for column in COLUMNS:
            sql = sql.replace(f":{column}", "?")
        processor = _events.c.received_at.type.dialect_impl(dialect).bind_processor(dialect)
        cached = (sql, processor or (lambda v: v))
        _sql_cache[dialect.name] = cached
    return cached


def insert_events(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert the rows (keys: COLUMNS); their new ids, in the same order."""
    if conn.dialect.name != "sqlite":
        result = conn.execute(_events.insert().returning(_events.c.id), list(rows))
        return sorted(int(r[0]) for r in result)
    sql, when = _sqlite_statement(conn.dialect)
    stamps: dict[Any, Any] = {None: None}

    def stamp(value: Any) -> Any:
        # A batch shares one received_at: format it once, not once per row.
        text = stamps.get(value)
        if text is None:
            text = stamps[value] = when(value)
        return text

    params = [(r["account_id"], r["event_type_id"], r["key_value"], r["body"], r["message_id"],
               stamp(r["received_at"]), stamp(r["occurred_at"]), stamp(r["processed_at"]),
               1 if r["is_past"] else 0) for r in rows]
    head, _, group = sql.partition(" VALUES ")
    # Straight on the driver's connection, inside the transaction SQLAlchemy opened: this
    # runs once per group commit, and SQLAlchemy's execution context cost more than the
    # statement for small batches.
    # The driver's own errors are raised as SQLAlchemy's, as ``exec_driver_sql`` would, so
    # callers' handling of a locked database or a conflict stays the same.
    raw = conn.connection.driver_connection
    assert raw is not None
    last = 0
    for start in range(0, len(params), ROWS_PER_STATEMENT):
        chunk = params[start:start + ROWS_PER_STATEMENT]
        statement = f"{head} VALUES {values_of(group, len(chunk))}"
        flat = [v for row in chunk for v in row]
        try:
            last = int(raw.execute(statement, flat).lastrowid)
        except sqlite3.Error as exc:
            raise exc_mod.DBAPIError.instance(statement, flat, exc, sqlite3.Error) from exc
    return list(range(last - len(params) + 1, last + 1))


def values_of(group: str, rows: int) -> str:
    return ", ".join([group] * rows)
