"""Turns at SQLite's write lock for the workers' transactions (event batches, step claims
and records, leases), so that a short step transaction is not kept waiting by a long
event batch plus SQLite's busy handler.

SQLite lets one connection write at a time; a writer that finds the lock taken sleeps in
the busy handler (1 ms growing to 100 ms between tries) and can lose several turns in a
row to writers that happen to try at the right moment. Worker transactions therefore wait
for a *turn* first: inside a process an asyncio lock whose waiters are served in arrival order,
urgent ones (workflow steps, claim renewals) a little ahead of event batches and leases;
across processes an exclusive ``flock`` on a file beside the database, in whose wait a
process sleeps in the kernel until the holder lets go. Writers that take no turn (the
ingest writers, API changes) still meet SQLite's own lock, as before.

On PostgreSQL, which orders writers itself (row locks, ``SKIP LOCKED``), and on an
in-memory database, a turn is just a transaction. A transaction begun while its task
already holds a turn takes none (it would wait for itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import fcntl
import heapq
import itertools
import os
import weakref
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.db.dialect import backend_for_url

__all__ = ["write_turn"]

_IN_TURN: contextvars.ContextVar[bool] = contextvars.ContextVar("in_write_turn", default=False)


# How much earlier than its arrival an urgent waiter is served: ahead of event batches that
# came up to this long before it, never ahead of one that has waited longer (no starvation).
URGENT_LEAD = 0.05


class _OrderedLock:
    """An asyncio lock handed to its waiters in arrival order, urgent ones counted as
    having come ``URGENT_LEAD`` seconds earlier."""

    def __init__(self) -> None:
        self._held = False
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    async def acquire(self, *, urgent: bool) -> None:
        if not self._held and not self._waiters:
            self._held = True
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        rank = loop.time() - (URGENT_LEAD if urgent else 0.0)
        heapq.heappush(self._waiters, (rank, next(self._seq), fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # handed over just as we were cancelled: pass it on
            raise

    def release(self) -> None:
        while self._waiters:
            _r, _s, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)  # handed over: stays held
                return
        self._held = False


class _Turns:
    """The turns of one engine: its process's lock and its database file's."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._lock = _OrderedLock()
        self._fd: int | None = None
        self._executor: ThreadPoolExecutor | None = None
        path = _lock_path(engine)
        if path is not None:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="write-turn")
            weakref.finalize(self, _close, self._fd, self._executor)

    @contextlib.asynccontextmanager
    async def begin(self, engine: AsyncEngine, *, urgent: bool) -> AsyncIterator[AsyncConnection]:
        if self._fd is None or _IN_TURN.get():
            async with engine.begin() as conn:
                yield conn
            return
        await self._lock.acquire(urgent=urgent)
        try:
            await self._lock_file(self._fd)
            token = _IN_TURN.set(True)
            try:
                async with engine.begin() as conn:
                    yield conn
            finally:
                _IN_TURN.reset(token)
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()

    async def _lock_file(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        # Another process holds it: wait in a thread (one at a time: we hold the process's
        # lock), so the event loop goes on.
        waited = asyncio.get_running_loop().run_in_executor(
            self._executor, fcntl.flock, fd, fcntl.LOCK_EX)
        try:
            await asyncio.shield(waited)
        except asyncio.CancelledError:
            waited.add_done_callback(lambda f: _unlock_if_taken(f, fd))
            raise


def _unlock_if_taken(fut: asyncio.Future[None], fd: int) -> None:
    if not fut.cancelled() and fut.exception() is None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _close(fd: int, executor: ThreadPoolExecutor) -> None:
    executor.shutdown(wait=False)
    with contextlib.suppress(OSError):
        os.close(fd)


def _lock_path(engine: AsyncEngine) -> str | None:
    if not backend_for_url(str(engine.url)).single_writer:
        return None
    db = engine.url.database
    if not db or db == ":memory:" or db.startswith("file:"):
        return None
    return f"{db}-workers.lock"


# One per engine, made on first use; it holds no reference to the engine.
_TURNS: weakref.WeakKeyDictionary[Engine, _Turns] = weakref.WeakKeyDictionary()


def write_turn(engine: AsyncEngine, *, urgent: bool = False
               ) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
    """``engine.begin()`` in a turn, held to the end of the commit. ``urgent``: served
    before the process's waiting event batches (workflow steps, claim renewals)."""
    found = _TURNS.get(engine.sync_engine)
    if found is None:
        found = _TURNS[engine.sync_engine] = _Turns(engine)
    return found.begin(engine, urgent=urgent)
