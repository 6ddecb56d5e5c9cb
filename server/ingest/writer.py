"""Group commit: concurrent events are written in one transaction, each caller answered after it.

One writer task per process drains everything that queued up while the previous
transaction ran, so a lone request is committed at once and a burst shares one commit.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.config import Settings
from server.db.models import utcnow
from server.errors import Unavailable
from server.ingest.model import ValidEvent, WriteResult
from server.ingest.txn import TypeIds, write_events

log = logging.getLogger(__name__)

MAX_ROWS_PER_TXN = 5000
# How long the SQLite writer keeps trying for the write lock held by other processes.
LOCK_WAIT_SECONDS = 10.0

OnCommit = Callable[[list[int]], Awaitable[None]]


@dataclass(slots=True)
class _Job:
    events: Sequence[ValidEvent]
    future: asyncio.Future[list[WriteResult]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


class EventWriter:
    """Owns the single write loop of one process."""

    def __init__(self, engine: AsyncEngine, *, on_commit: OnCommit | None = None,
                 settings: Settings | None = None) -> None:
        self._engine = engine
        self._on_commit = on_commit
        self._pending: deque[_Job] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._type_ids: dict[tuple[int, str], int] = {}
        self._closing = False
        # The writer keeps one connection for its life: no pool check-out and reset per
        # transaction. It is dropped after a database error and opened again on next use.
        self._conn: AsyncConnection | None = None
        # Given settings: the ingest writer process of ``python -m server`` when its socket
        # is set; else, on SQLite, a synchronous engine driven from one thread of the
        # writer's own, a single hand-off per transaction.
        self._thread: ThreadPoolExecutor | None = None
        self._sqlite: SqliteIngest | None = None
        self._remote: Any = None
        if settings is not None and settings.ingest_writer_socket:
            from server.ingest.writerproc import WriterClient

            self._remote = WriterClient(settings.ingest_writer_socket)
        elif settings is not None and engine.dialect.name == "sqlite":
            self._sqlite = SqliteIngest(engine.url.set(drivername="sqlite"), settings,
                                        type_cache=self._type_ids)
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="event-writer")
        self.commits = 0  # for the benchmark: how many transactions served the load

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-writer")

    async def stop(self) -> None:
        """Finish what is queued, then end the loop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        await self._drop_connection()
        if self._remote is not None:
            await self._remote.close()
        if self._thread is not None and self._sqlite is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._sqlite.close)
            self._thread.shutdown()

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except (SQLAlchemyError, OSError):
                log.warning("closing the writer's database connection failed", exc_info=True)

    async def write(self, events: Sequence[ValidEvent]) -> list[WriteResult]:
        if self._closing:
            raise Unavailable("the server is shutting down; retry against another instance")
        job = _Job(events)
        self._pending.append(job)
        self._wake.set()
        return await job.future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, rows = [], 0
                while self._pending and rows < MAX_ROWS_PER_TXN:
                    job = self._pending.popleft()
                    batch.append(job)
                    rows += len(job.events)
                try:
                    await self._commit_batch(batch)
                except Exception:  # the loop must outlive any one batch
                    log.exception("event commit failed unexpectedly")
                    self._fail(batch, "the write failed unexpectedly (see the server log)")
            if self._closing and not self._pending:
                return

    async def _commit_batch(self, batch: list[_Job]) -> None:
        events = [ev for job in batch for ev in job.events]
        results: list[WriteResult] = []
        for attempt in range(3):
            try:
                results = await self._commit(events)
                break
            except IntegrityError:
                self._type_ids.clear()
                # Another process inserted the same message id or event type first;
                # the retry sees its committed row.
                if attempt == 2:
                    self._fail(batch, "conflicting concurrent writes")
                    return
            except (SQLAlchemyError, OSError) as exc:
                self._type_ids.clear()
                await self._drop_connection()
                log.exception("event commit failed")
                self._fail(batch, f"the database did not accept the write ({type(exc).__name__})")
                return
            except Unavailable as exc:  # the writer process: its own words say what happened
                log.warning("event commit failed: %s", exc.message)
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(Unavailable(exc.message))
                return
        self.commits += 1
        pos = 0
        for job in batch:
            n = len(job.events)
            if not job.future.done():
                job.future.set_result(results[pos:pos + n])
            pos += n
        # The writer process enqueues what it committed itself.
        if self._on_commit is not None and self._remote is None:
            new_ids = [r.event_id for r, ev in zip(results, events)
                       if not r.duplicate and ev.occurred is None]
            if new_ids:
                await self._on_commit(new_ids)

    def _fail(self, batch: list[_Job], reason: str) -> None:
        for job in batch:
            if not job.future.done():
                job.future.set_exception(Unavailable(f"{reason}; nothing was stored, retry"))

    async def _commit(self, events: list[ValidEvent]) -> list[WriteResult]:
        if self._remote is not None:
            results: list[WriteResult] = await self._remote.write(events)
            return results
        now = utcnow()
        if self._thread is not None and self._sqlite is not None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._thread, self._sqlite.write, events, now)
        if self._conn is None:
            self._conn = await self._engine.connect()
        conn = self._conn
        async with conn.begin():
            return await conn.run_sync(write_events, events, now=now, type_cache=self._type_ids)



class _Ingest:
    """A synchronous connection for ingest transactions, opened on first use."""

    _engine: Engine
    _conn: Any
    _type_ids: TypeIds

    def _write_in_transaction(self, events: list[ValidEvent], now: datetime
                              ) -> list[WriteResult]:
        if self._conn is None:
            self._conn = self._engine.connect()
        with self._conn.begin():
            return write_events(self._conn, events, now=now, type_cache=self._type_ids)

    def _invalidate(self) -> None:
        """Drop the connection after an error; the next write opens a new one."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.invalidate()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._engine.dispose()


class SqliteIngest(_Ingest):
    """Ingest transactions on one synchronous SQLite connection (a writer thread's or the
    writer process's).

    The ingest writers of all processes on one database take turns through an exclusive
    ``flock`` on a file beside it: a waiting writer sleeps in the kernel until the lock
    is free, while its events keep queueing for the next (larger) group commit. Other
    writers of the database (workers, API changes) still meet SQLite's own lock; SQLite's
    busy handler sleeps 1, 2, 5 ... 100 ms between tries, which showed as a 100+ ms p99, so
    this connection has no busy timeout and retries after short sleeps instead.
    """

    def __init__(self, url: URL, settings: Settings, *, type_cache: TypeIds) -> None:
        from server.db.engine import _sqlite_pragmas  # the same WAL and synchronous setting

        self._engine = create_engine(url, pool_size=1, max_overflow=0)
        event.listen(self._engine, "connect", _sqlite_pragmas(settings))
        event.listen(self._engine, "connect", _no_busy_timeout)
        self._conn: Any = None
        self._type_ids = type_cache
        self._lock_path = _ingest_lock_path(url.database)
        self._lock_fd: int | None = None

    def write(self, events: list[ValidEvent], now: datetime) -> list[WriteResult]:
        fd = self._lock_fd
        if fd is None and self._lock_path is not None:
            fd = self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            return self._transaction(events, now)
        finally:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _transaction(self, events: list[ValidEvent], now: datetime) -> list[WriteResult]:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        delay = 0.0002
        while True:
            try:
                return self._write_in_transaction(events, now)
            except IntegrityError:
                raise
            except OperationalError as exc:
                if not _locked(exc) or time.monotonic() > deadline:
                    self._invalidate()
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.004)
            except BaseException:
                self._invalidate()
                raise

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        super().close()


class ServerIngest(_Ingest):
    """Ingest transactions on one synchronous connection to a database server
    (PostgreSQL), for the writer process: the server orders concurrent writers itself."""

    def __init__(self, url: URL, *, type_cache: TypeIds) -> None:
        self._engine = create_engine(url, pool_size=1, max_overflow=0)
        self._conn: Any = None
        self._type_ids = type_cache

    def write(self, events: list[ValidEvent], now: datetime) -> list[WriteResult]:
        try:
            return self._write_in_transaction(events, now)
        except IntegrityError:
            raise
        except BaseException:
            # A lost connection or a server error: start over on a new connection.
            self._invalidate()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._engine.dispose()


def _ingest_lock_path(db: str | None) -> str | None:
    """The file whose flock orders the ingest writers of one SQLite database."""
    if not db or db == ":memory:":
        return None
    return f"{db}-ingest.lock"


def _locked(exc: OperationalError) -> bool:
    return "locked" in str(exc.orig) or "busy" in str(exc.orig)


def _no_busy_timeout(dbapi_conn: Any, _record: Any) -> None:
    # The writer waits for the lock itself, in short steps (see _commit_in_thread).
    dbapi_conn.execute("PRAGMA busy_timeout=0")
