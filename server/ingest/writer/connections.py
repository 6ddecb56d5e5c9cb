"""The synchronous database connection an ingest transaction runs on, one per writer.

A writer keeps its connection for its life (no pool check-out and reset per transaction),
drops it after a database error and opens a new one on next use. ``open_connection``
picks the kind for the database: SQLite, with the ingest lock shared by every writer of
the file, or a database server (PostgreSQL), which orders concurrent writers itself.
"""

from __future__ import annotations

import fcntl
import os
import time
from datetime import datetime
from typing import Any

from sqlalchemy import URL, Connection, create_engine, event, make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from server.config import Settings
from server.db.dialect import backend_for_url, sync_database_url
from server.db.engine import DB_WAIT_SECONDS
from server.db.errors import locked
from server.eventtypes.shapes import KnownPairs
from server.ingest.model import ValidEvent, WriteResult
from server.ingest.txn import TypeIds, write_events

__all__ = ["LOCK_WAIT_SECONDS", "IngestConnection", "SqliteConnection",
           "open_connection"]

# How long a writer keeps trying for a lock held by another connection (SQLite's write
# lock, a PostgreSQL table or row lock) before the batch is answered UNAVAILABLE; after
# such a failure, until a write succeeds again, only FAILING_WAIT_SECONDS, so the callers
# queued behind a held lock are answered at once rather than one wait each.
LOCK_WAIT_SECONDS = DB_WAIT_SECONDS
FAILING_WAIT_SECONDS = 0.25


class IngestConnection:
    """Ingest transactions on one synchronous connection, opened on first use; as it is,
    for a database server (PostgreSQL), which orders concurrent writers itself.

    ``type_cache`` keeps event type ids across transactions; whoever sees a failed
    transaction clears it.
    """

    def __init__(self, url: URL) -> None:
        self._engine = create_engine(url, pool_size=1, max_overflow=0)
        self._conn: Connection | None = None
        self.type_cache: TypeIds = {}
        self.param_cache: KnownPairs = {}
        # A lock wait ran out and no write succeeded since (see FAILING_WAIT_SECONDS).
        self.failing = False

    def write(self, events: list[ValidEvent], now: datetime) -> list[WriteResult]:
        """Store ``events`` in one transaction. A conflict (IntegrityError) keeps the
        connection; any other failure drops it, so the next write starts on a new one."""
        try:
            return self._attempt(events, now)
        except IntegrityError:
            raise
        except BaseException:
            self._invalidate()
            raise

    def _attempt(self, events: list[ValidEvent], now: datetime) -> list[WriteResult]:
        try:
            results = self._write_in_transaction(events, now)
        except OperationalError as exc:
            self.failing = locked(exc)
            raise
        self.failing = False
        return results

    def _write_in_transaction(self, events: list[ValidEvent], now: datetime
                              ) -> list[WriteResult]:
        if self._conn is None:
            self._conn = self._engine.connect()
        with self._conn.begin():
            wait = FAILING_WAIT_SECONDS if self.failing else LOCK_WAIT_SECONDS
            self._set_lock_wait(self._conn, wait)
            return write_events(self._conn, events, now=now, type_cache=self.type_cache,
                                param_cache=self.param_cache)

    def _set_lock_wait(self, conn: Connection, seconds: float) -> None:
        """How long this transaction's statements wait for another connection's lock."""
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(seconds * 1000)}")

    def _invalidate(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.invalidate()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._engine.dispose()


class SqliteConnection(IngestConnection):
    """One SQLite connection (a writer thread's or the writer process's).

    The ingest writers of all processes on one database take turns through an exclusive
    ``flock`` on a file beside it: a waiting writer sleeps in the kernel until the lock
    is free, while its events keep queueing for the next (larger) group commit. Other
    writers of the database (workers, API changes) still meet SQLite's own lock; SQLite's
    busy handler sleeps 1, 2, 5 ... 100 ms between tries, which showed as a 100+ ms p99, so
    this connection has no busy timeout and retries after short sleeps instead.
    """

    def __init__(self, url: URL, settings: Settings) -> None:
        super().__init__(url)
        pragmas = backend_for_url(settings.database_url).on_connect(
            synchronous=settings.sqlite_synchronous)
        assert pragmas is not None  # WAL and the synchronous mode, as every engine's
        event.listen(self._engine, "connect", pragmas)
        event.listen(self._engine, "connect", _no_busy_timeout)
        self._lock_path = _ingest_lock_path(url.database)
        self._lock_fd: int | None = None

    def write(self, events: list[ValidEvent], now: datetime) -> list[WriteResult]:
        fd = self._lock_fd
        if fd is None and self._lock_path is not None:
            fd = self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            return super().write(events, now)
        finally:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _attempt(self, events: list[ValidEvent], now: datetime) -> list[WriteResult]:
        """Wait out SQLite's lock held by a writer that is not an ingest writer."""
        wait = FAILING_WAIT_SECONDS if self.failing else LOCK_WAIT_SECONDS
        deadline = time.monotonic() + wait
        delay = 0.0002
        while True:
            try:
                results = self._write_in_transaction(events, now)
            except OperationalError as exc:
                if not locked(exc) or time.monotonic() > deadline:
                    self.failing = locked(exc)
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.004)
            else:
                self.failing = False
                return results

    def _set_lock_wait(self, conn: Connection, seconds: float) -> None:
        pass  # busy_timeout is 0: _attempt waits itself

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        super().close()


def open_connection(settings: Settings) -> IngestConnection:
    """The ingest connection for ``settings.database_url`` (not connected yet)."""
    url = make_url(sync_database_url(settings.database_url))
    if backend_for_url(settings.database_url).single_writer:
        return SqliteConnection(url, settings)
    return IngestConnection(url)


def _ingest_lock_path(db: str | None) -> str | None:
    """The file whose flock orders the ingest writers of one SQLite database."""
    if not db or db == ":memory:":
        return None
    return f"{db}-ingest.lock"


def _no_busy_timeout(dbapi_conn: Any, _record: Any) -> None:
    # The writer waits for the lock itself, in short steps (see SqliteConnection._attempt).
    dbapi_conn.execute("PRAGMA busy_timeout=0")
