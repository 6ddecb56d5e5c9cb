"""Group commit: concurrent events are written in one transaction, each caller answered after it.

One writer task per process drains everything that queued up while the previous
transaction ran, so a lone request is committed at once and a burst shares one commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Awaitable, Callable, Sequence

from sqlalchemy import and_, delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.db.models import Event, EventType, MessageId, utcnow
from server.errors import Unavailable
from server.ingest.inserts import insert_events
from server.ingest.model import ValidEvent, WriteResult

log = logging.getLogger(__name__)

_events = Event.__table__
_types = EventType.__table__
_msgids = MessageId.__table__
DEDUP_WINDOW = timedelta(hours=24)
MAX_ROWS_PER_TXN = 5000

OnCommit = Callable[[list[int]], Awaitable[None]]


@dataclass(slots=True)
class _Job:
    events: Sequence[ValidEvent]
    future: asyncio.Future[list[WriteResult]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


class EventWriter:
    """Owns the single write loop of one process."""

    def __init__(self, engine: AsyncEngine, *, on_commit: OnCommit | None = None) -> None:
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
                await self._commit_batch(batch)
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
        self.commits += 1
        pos = 0
        for job in batch:
            n = len(job.events)
            if not job.future.done():
                job.future.set_result(results[pos:pos + n])
            pos += n
        if self._on_commit is not None:
            new_ids = [r.event_id for r, ev in zip(results, events)
                       if not r.duplicate and ev.occurred is None]
            if new_ids:
                await self._on_commit(new_ids)

    def _fail(self, batch: list[_Job], reason: str) -> None:
        for job in batch:
            if not job.future.done():
                job.future.set_exception(Unavailable(f"{reason}; nothing was stored, retry"))

    async def _commit(self, events: list[ValidEvent]) -> list[WriteResult]:
        now = utcnow()
        if self._conn is None:
            self._conn = await self._engine.connect()
        conn = self._conn
        async with conn.begin():
            type_ids = await self._type_ids_for(conn, events, now)
            dup_of, first_of = await self._dedupe(conn, events, now)
            rows: list[dict[str, Any]] = []
            row_index: list[int] = []
            for i, ev in enumerate(events):
                if i in dup_of or i in first_of:
                    continue
                rows.append(self._row(ev, type_ids, now))
                row_index.append(i)
            ids: list[int] = []
            if rows:
                ids = await insert_events(conn, rows)
            event_id: dict[int, int] = dict(zip(row_index, ids))
            msg_rows = []
            for i, ev in enumerate(events):
                if ev.message_id and i in event_id:
                    msg_rows.append({"account_id": ev.account_id, "message_id": ev.message_id,
                                     "event_id": event_id[i], "created_at": now})
            if msg_rows:
                await conn.execute(_msgids.insert(), msg_rows)
        out: list[WriteResult] = []
        for i in range(len(events)):
            if i in event_id:
                out.append(WriteResult(event_id[i]))
            elif i in first_of:
                out.append(WriteResult(event_id[first_of[i]], duplicate=True))
            else:
                out.append(WriteResult(dup_of[i], duplicate=True))
        return out

    @staticmethod
    def _row(ev: ValidEvent, type_ids: dict[tuple[int, str], int], now: Any) -> dict[str, Any]:
        past = ev.occurred is not None
        return {
            "account_id": ev.account_id,
            "event_type_id": type_ids[(ev.account_id, ev.event_type_key)],
            "key_value": ev.key_value,
            "body": ev.body,
            "message_id": ev.message_id,
            "received_at": now,
            "occurred_at": ev.occurred,
            # Past events start no workflow, so there is nothing to dispatch.
            "processed_at": now if past else None,
            "is_past": past,
        }

    async def _dedupe(self, conn: AsyncConnection, events: list[ValidEvent], now: Any
                      ) -> tuple[dict[int, int], dict[int, int]]:
        """Map batch positions to an earlier event: stored ones, then earlier in the batch."""
        wanted = {(ev.account_id, ev.message_id) for ev in events if ev.message_id}
        dup_of: dict[int, int] = {}
        first_of: dict[int, int] = {}
        if not wanted:
            return dup_of, first_of
        cutoff = now - DEDUP_WINDOW
        keys = list(wanted)
        await conn.execute(delete(_msgids).where(and_(
            tuple_(_msgids.c.account_id, _msgids.c.message_id).in_(keys),
            _msgids.c.created_at <= cutoff)))
        found = await conn.execute(
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

    async def _type_ids_for(self, conn: AsyncConnection, events: list[ValidEvent], now: Any
                            ) -> dict[tuple[int, str], int]:
        needed = {(ev.account_id, ev.event_type_key) for ev in events}
        missing = [k for k in needed if k not in self._type_ids]
        if missing:
            dialect = conn.dialect.name
            ins = postgresql.insert(_types) if dialect == "postgresql" else sqlite.insert(_types)
            # ON CONFLICT makes concurrent first events of a type create it exactly once.
            await conn.execute(
                ins.on_conflict_do_nothing(index_elements=["account_id", "key"]),
                [{"account_id": a, "key": k, "create_contacts": True, "created_at": now}
                 for a, k in missing])
            found = await conn.execute(
                select(_types.c.account_id, _types.c.key, _types.c.id)
                .where(tuple_(_types.c.account_id, _types.c.key).in_(missing)))
            for a, k, type_id in found:
                self._type_ids[(a, k)] = int(type_id)
            if len(self._type_ids) > 100_000:
                self._type_ids = {k: self._type_ids[k] for k in missing}
        return {k: self._type_ids[k] for k in needed}
