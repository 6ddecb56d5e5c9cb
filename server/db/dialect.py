"""What differs between the databases eventflow stores in, gathered in one module.

Everything else writes portable SQLAlchemy and asks here for the rest: the insert that
knows ``ON CONFLICT``, how to lock rows for an update, transaction-scoped serialisation,
a bulk insert answering the new ids, engine options and migration locking. A new storage
backend is one more ``Backend`` subclass here (plus its driver in
``config.normalise_database_url``).

SQLite has one writer at a time and no row locks: a transaction that will write takes the
database's write lock first (a no-op ``UPDATE``), so two workers cannot both read a row
as unprocessed; the lock also serialises whatever advisory locks order on PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    Select,
    String,
    Table,
    TextClause,
    func,
    make_url,
    select,
    text,
    type_coerce,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["BIGINT_PK", "Backend", "backend_for_url", "backend_of", "lock_rows",
           "normalise_database_url", "on_conflict_insert", "serialise", "sync_database_url"]

# SQLite only auto-increments an INTEGER PRIMARY KEY; elsewhere ids are 64-bit.
BIGINT_PK = BigInteger().with_variant(Integer(), "sqlite")

Conn = Connection | AsyncConnection


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _from_text(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


class Backend:
    """The portable defaults; subclasses override what their database does differently."""

    name = ""

    def insert(self, table: Table) -> Any:
        """The dialect's ``INSERT`` that knows ``on_conflict_do_nothing``/``do_update``."""
        raise NotImplementedError(f"no ON CONFLICT insert for {self.name}")

    def write_lock(self, table: Table, where: ColumnElement[bool]) -> Any:
        """A statement that takes the database's write lock before reading, or None
        where rows are locked one by one (``for_update``)."""
        return None

    def for_update(self, query: Select[Any], *, of: Table | None = None) -> Select[Any]:
        return query.with_for_update(of=of)

    def serialise(self, a: int, b: int) -> TextClause | None:
        """A lock on (a, b) held to the end of the transaction, or None where the
        database already runs one writer at a time."""
        return None

    def insert_returning_ids(self, conn: Connection, table: Table,
                             rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """Insert ``rows`` (same keys each) in one go; their new ids, in row order."""
        result = conn.execute(table.insert().returning(table.c.id), list(rows))
        # A sequence only grows, so sorted ids follow row order.
        return sorted(int(r[0]) for r in result)

    def read_times(self, expr: ColumnElement[Any]
                   ) -> tuple[ColumnElement[Any], Callable[[Any], datetime]]:
        """A time column to select for many rows, and how to read each value as an aware
        UTC datetime."""
        return expr, _aware

    # Engines and migrations.

    def engine_options(self) -> dict[str, Any]:
        return {"pool_size": 10, "max_overflow": 20, "pool_pre_ping": True}

    def on_connect(self, *, synchronous: str, lock_wait: float | None = None
                   ) -> Callable[[Any, Any], None] | None:
        """What to run on every new driver connection, or None. ``synchronous``:
        ``Settings.sqlite_synchronous``; ``lock_wait``: seconds a statement may wait for a
        lock another connection holds (None: the database's default)."""
        return None

    def prepare(self, url: str) -> None:
        """Make the database reachable before the first connection (create its folder)."""

    migration_lock: TextClause | None = None
    migration_unlock: TextClause | None = None
    render_as_batch = False
    # One writer at a time for the whole database: the ingest writers take turns (see
    # server.ingest.writer.connections) rather than meet in the database's lock.
    single_writer = False
    # URL schemes users write, and the SQLAlchemy drivers we ship for them.
    schemes: tuple[str, ...] = ()
    async_driver = ""
    sync_driver = ""


class PostgresBackend(Backend):
    name = "postgresql"
    schemes = ("postgres", "postgresql")
    # psycopg 3 serves synchronous and asyncio engines from the same URL.
    async_driver = sync_driver = "postgresql+psycopg"
    migration_lock = text("SELECT pg_advisory_lock(7262001)")
    migration_unlock = text("SELECT pg_advisory_unlock(7262001)")

    def insert(self, table: Table) -> Any:
        return postgresql.insert(table)

    def serialise(self, a: int, b: int) -> TextClause | None:
        return text("SELECT pg_advisory_xact_lock(:a, :b)").bindparams(a=a, b=b)

    def on_connect(self, *, synchronous: str, lock_wait: float | None = None
                   ) -> Callable[[Any, Any], None] | None:
        if lock_wait is None:
            return None
        statement = f"SET lock_timeout = {int(lock_wait * 1000)}"

        def on_connect(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute(statement)
            cur.close()
            dbapi_conn.commit()  # a SET inside a rolled-back transaction is undone

        return on_connect


# SQLite allows 32766 bound variables per statement.
SQLITE_MAX_VARIABLES = 32766
ROWS_PER_STATEMENT = 1000


class SqliteBackend(Backend):
    name = "sqlite"
    render_as_batch = True  # ALTER TABLE is limited: Alembic copies the table instead
    single_writer = True
    schemes = ("sqlite",)
    async_driver = "sqlite+aiosqlite"
    sync_driver = "sqlite"

    def __init__(self) -> None:
        self._inserts: dict[tuple[str, tuple[str, ...]], _SqliteInsert] = {}

    def read_times(self, expr: ColumnElement[Any]
                   ) -> tuple[ColumnElement[Any], Callable[[Any], datetime]]:
        # The stored text, parsed by fromisoformat: SQLAlchemy's regular-expression parse
        # of each value was most of the cost of loading a batch's events for segments.
        return type_coerce(expr, String), _from_text

    def insert(self, table: Table) -> Any:
        return sqlite.insert(table)

    def write_lock(self, table: Table, where: ColumnElement[bool]) -> Any:
        # Any write takes the lock; set a plain column (no key, no reference) to itself.
        column = next(c for c in table.c if not c.primary_key and not c.foreign_keys)
        return table.update().where(where).values({column: column})

    def for_update(self, query: Select[Any], *, of: Table | None = None) -> Select[Any]:
        return query  # the write lock taken first already holds every row

    def insert_returning_ids(self, conn: Connection, table: Table,
                             rows: Sequence[Mapping[str, Any]]) -> list[int]:
        if not rows:
            return []
        columns = tuple(rows[0])
        key = (table.name, columns)
        compiled = self._inserts.get(key)
        if compiled is None:
            compiled = self._inserts[key] = _SqliteInsert(table, columns, conn.dialect)
        return compiled.run(conn, rows)

    def engine_options(self) -> dict[str, Any]:
        return {"pool_size": 5, "max_overflow": 10}

    def on_connect(self, *, synchronous: str, lock_wait: float | None = None
                   ) -> Callable[[Any, Any], None]:
        busy_ms = int((10.0 if lock_wait is None else lock_wait) * 1000)

        def on_connect(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets readers and several processes work beside one writer;
            # the busy timeout makes writers from other processes wait instead of failing.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.execute(f"PRAGMA busy_timeout={busy_ms}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return on_connect

    def prepare(self, url: str) -> None:
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


class _SqliteInsert:
    """A multi-row ``INSERT .. VALUES (..), (..)`` straight on the driver connection,
    the ids taken from ``last_insert_rowid()``.

    The caller holds SQLite's write lock for the whole transaction and each new row takes
    ``max(id) + 1``, so the ids are the consecutive run ending there. Not ``executemany``:
    it steps each row separately, giving up the GIL and waiting to get it back every time,
    and with an event loop busy in another thread that wait was up to the 5 ms switch
    interval per row. Not through SQLAlchemy's execution context either: for the small
    batches of a group commit it cost more than the statement. Values are converted as
    the column types would bind them, each distinct value once per batch (a batch shares
    its timestamps).
    """

    def __init__(self, table: Table, columns: tuple[str, ...], dialect: Dialect) -> None:
        sql = str(table.insert().values({c: None for c in columns}).compile(dialect=dialect))
        # The compiled text names :params in column order; pysqlite wants "?" markers.
        for column in columns:
            sql = sql.replace(f":{column}", "?")
        self._head, _, self._group = sql.partition(" VALUES ")
        self._values = itemgetter(*columns) if len(columns) > 1 else (
            lambda row: (row[columns[0]],))
        self._convert = []
        for i, column in enumerate(columns):
            processor = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self._convert.append((i, processor))
        self._per_statement = min(ROWS_PER_STATEMENT, SQLITE_MAX_VARIABLES // len(columns))

    def run(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        values, convert = self._values, self._convert
        memos: list[dict[Any, Any]] = [{None: None} for _ in convert]
        params: list[Any] = []
        for row in rows:
            vals = list(values(row))
            for (i, processor), memo in zip(convert, memos):
                v = vals[i]
                try:
                    vals[i] = memo[v]
                except KeyError:
                    vals[i] = memo[v] = processor(v)
            params.append(vals)
        # The driver's own errors are raised as SQLAlchemy's, as ``exec_driver_sql`` would,
        # so callers' handling of a locked database or a conflict stays the same.
        raw = conn.connection.driver_connection
        assert raw is not None
        last = 0
        for start in range(0, len(params), self._per_statement):
            chunk = params[start:start + self._per_statement]
            statement = f"{self._head} VALUES {', '.join([self._group] * len(chunk))}"
            flat = [v for vals in chunk for v in vals]
            try:
                last = int(raw.execute(statement, flat).lastrowid)
            except sqlite3.Error as exc:
                raise sa_exc.DBAPIError.instance(statement, flat, exc, sqlite3.Error) from exc
        return list(range(last - len(params) + 1, last + 1))


_BACKENDS: dict[str, Backend] = {b.name: b for b in (SqliteBackend(), PostgresBackend())}


def _named(name: str) -> Backend:
    try:
        return _BACKENDS[name]
    except KeyError:
        raise SystemExit(f"eventflow stores in SQLite or PostgreSQL, not {name!r}") from None


def backend_of(conn: Conn) -> Backend:
    return _named(conn.dialect.name)


def backend_for_url(url: str) -> Backend:
    return _named(make_url(url).get_backend_name())


def normalise_database_url(url: str) -> str:
    """Map user-facing URLs onto the async SQLAlchemy drivers we ship; others stay as given."""
    scheme, sep, rest = url.partition("://")
    for backend in _BACKENDS.values():
        if sep and scheme in backend.schemes:
            return f"{backend.async_driver}://{rest}"
    return url


def sync_database_url(url: str) -> str:
    """The synchronous twin of a normalised URL (Alembic, the ingest writers)."""
    backend = backend_for_url(url)
    scheme, _, rest = url.partition("://")
    return f"{backend.sync_driver}://{rest}" if scheme == backend.async_driver else url


def on_conflict_insert(conn: Conn, table: Table) -> Any:
    """The ``INSERT`` of ``conn``'s database that knows ``ON CONFLICT``."""
    return backend_of(conn).insert(table)


async def lock_rows(conn: AsyncConnection, query: Select[Any], *, table: Table,
                    where: ColumnElement[bool], of: Table | None = None) -> Any:
    """Run ``query`` with the rows of ``table`` matching ``where`` locked to the end of the
    transaction; the result."""
    backend = backend_of(conn)
    first = backend.write_lock(table, where)
    if first is not None:
        await conn.execute(first)
    return await conn.execute(backend.for_update(query, of=of))


async def insert_ids(conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]]
                     ) -> list[int]:
    """Insert ``rows`` (same keys each) inside the caller's transaction; their new ids, in
    row order. On SQLite the caller must already hold the write lock (it wrote earlier in
    the transaction): the rows then take the ids after the largest, one statement stepping
    every row (SQLAlchemy's RETURNING in row order falls back to one statement per row
    there, each a round trip to the driver's thread)."""
    if not rows:
        return []
    if backend_of(conn).single_writer:
        top = int((await conn.execute(select(func.max(table.c.id)))).scalar() or 0)
        await conn.execute(table.insert(), list(rows))
        return list(range(top + 1, top + 1 + len(rows)))
    result = await conn.execute(
        table.insert().returning(table.c.id, sort_by_parameter_order=True), list(rows))
    return [int(r[0]) for r in result.all()]


async def serialise(conn: AsyncConnection, a: int, b: int) -> None:
    """Hold a lock on (a, b) to the end of the transaction (transactions of one key run
    one after another)."""
    statement = backend_of(conn).serialise(a, b)
    if statement is not None:
        await conn.execute(statement)
