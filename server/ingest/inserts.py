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

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection
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
    for start in range(0, len(params), ROWS_PER_STATEMENT):
        chunk = params[start:start + ROWS_PER_STATEMENT]
        values = ", ".join([group] * len(chunk))
        flat = [v for row in chunk for v in row]
        conn.exec_driver_sql(f"{head} VALUES {values}", tuple(flat))
    last = int(conn.exec_driver_sql("SELECT last_insert_rowid()").scalar_one())
    return list(range(last - len(params) + 1, last + 1))
