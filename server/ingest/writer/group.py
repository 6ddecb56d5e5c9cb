"""Group commit: concurrent events are written in one transaction, each caller answered after it.

One loop per serving process drains everything that queued up while the previous
transaction ran, so a lone request is committed at once and a burst shares one commit.
Where the transaction runs is the ``Committer``'s business: a thread of this process
(``local_writer``) or the ingest writer process (``remote_writer``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from server.config import Settings
from server.errors import Unavailable
from server.ingest.model import ValidEvent, WriteResult
from server.ingest.writer.client import WriterClient
from server.ingest.writer.commit import CommitFailed, commit, dispatch_accounts
from server.ingest.writer.connections import IngestConnection, open_connection

__all__ = ["MAX_ROWS_PER_TXN", "GroupCommit", "OnCommit", "local_writer", "remote_writer"]

log = logging.getLogger(__name__)
MAX_ROWS_PER_TXN = 5000

OnCommit = Callable[[list[int]], Awaitable[None]]


class Committer(Protocol):
    async def commit(self, events: list[ValidEvent]) -> list[WriteResult]:
        """Results in order; Unavailable (with the caller's message) if nothing was stored."""

    async def close(self) -> None: ...


@dataclass(slots=True)
class _Job:
    events: Sequence[ValidEvent]
    future: asyncio.Future[list[WriteResult]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


class GroupCommit:
    """The single write loop of one process (a ``Writer``)."""

    def __init__(self, committer: Committer, *, on_commit: OnCommit | None = None) -> None:
        self._committer = committer
        self._on_commit = on_commit
        self._pending: deque[_Job] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-writer")

    async def stop(self) -> None:
        """Finish what is queued, then end the loop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        await self._committer.close()

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
                    _fail(batch, CommitFailed(
                        "the write failed unexpectedly (see the server log)").unavailable())
            if self._closing and not self._pending:
                return

    async def _commit_batch(self, batch: list[_Job]) -> None:
        events = [ev for job in batch for ev in job.events]
        try:
            results = await self._committer.commit(events)
        except Unavailable as exc:
            log.warning("event commit failed: %s", exc.message)
            _fail(batch, exc)
            return
        pos = 0
        for job in batch:
            n = len(job.events)
            if not job.future.done():
                job.future.set_result(results[pos:pos + n])
            pos += n
        if self._on_commit is not None:
            accounts = dispatch_accounts(events, results)
            if accounts:
                await self._on_commit(accounts)


def _fail(batch: list[_Job], exc: Unavailable) -> None:
    for job in batch:
        if not job.future.done():
            job.future.set_exception(Unavailable(exc.message))


class _ThreadCommitter:
    """Transactions on one connection, run by one thread of this process: a single
    hand-off per transaction (an async driver pays a thread round trip per statement)."""

    def __init__(self, conn: IngestConnection) -> None:
        self._conn = conn
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="event-writer")

    async def commit(self, events: list[ValidEvent]) -> list[WriteResult]:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._thread, commit, self._conn, events)
        except CommitFailed as exc:
            raise exc.unavailable() from None

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._conn.close)
        self._thread.shutdown()


def local_writer(settings: Settings, *, on_commit: OnCommit | None) -> GroupCommit:
    """This process commits its own events and hands the new ones to ``on_commit``."""
    return GroupCommit(_ThreadCommitter(open_connection(settings)), on_commit=on_commit)


def remote_writer(socket_path: str) -> GroupCommit:
    """The ingest writer process at ``socket_path`` commits; it also enqueues the new
    events for the workers, so there is nothing to hand on here."""
    return GroupCommit(WriterClient(socket_path))
