"""Wake the workers for committed events through Redis; sweep up what did not get there.

The database row is the source of truth. Right after a commit the accounts with new
events are woken (``server.processing.wake``: one ``ZADD`` per commit); the workers then
claim those accounts' unprocessed events in batches and record ``processed_at`` with the
effects (``server.processing.batch``), so each stored event is handled once. If Redis is
down the events stay unprocessed and the sweeper wakes their accounts later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from arq.connections import ArqRedis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.config import Settings
from server.db.models import Event, table_of
from server.processing.wake import wake_key, wake_mapping

log = logging.getLogger(__name__)
_events = table_of(Event)


async def pending_accounts(conn: AsyncConnection) -> list[int]:
    """Accounts with unprocessed events (read from the partial index ``ix_events_pending``)."""
    rows = (await conn.execute(select(_events.c.account_id).distinct()
                               .where(_events.c.processed_at.is_(None)))).scalars().all()
    return sorted(int(a) for a in rows)


async def wake(redis: Any, settings: Settings, accounts: Iterable[int]) -> int:
    """Wake the workers for these accounts; how many were not waiting already."""
    mapping = wake_mapping(accounts)
    if not mapping:
        return 0
    return int(await redis.zadd(wake_key(settings), mapping, nx=True))


class Dispatcher:
    """Wakes the workers for committed events; runs the sweeper."""

    def __init__(self, redis: ArqRedis, engine: AsyncEngine, *, settings: Settings) -> None:
        self._redis = redis
        self._engine = engine
        self._settings = settings
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    async def wake(self, accounts: Sequence[int]) -> int:
        return await wake(self._redis, self._settings, accounts)

    async def enqueue(self, event_ids: Sequence[int]) -> int:
        """Wake the accounts of these stored events (events a workflow step launched)."""
        if not event_ids:
            return 0
        async with self._engine.connect() as conn:
            accounts = (await conn.execute(select(_events.c.account_id).distinct()
                                           .where(_events.c.id.in_(list(event_ids))))
                        ).scalars().all()
        return await self.wake([int(a) for a in accounts])

    async def after_commit(self, accounts: list[int]) -> None:
        """Called by the writer; the wake-up runs beside the answers, never delaying them."""
        task = asyncio.create_task(self._wake_quietly(accounts))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _wake_quietly(self, accounts: list[int]) -> None:
        try:
            await self.wake(accounts)
        except Exception as exc:  # noqa: BLE001 - any Redis failure leaves it to the sweeper
            log.warning("waking the workers for %d accounts failed (%s); the sweeper will "
                        "retry", len(accounts), exc)

    def start_sweeper(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="dispatch-sweeper")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            try:
                await self._sweeper
            except asyncio.CancelledError:
                pass
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def sweep_once(self) -> int:
        """Wake every account that has unprocessed events."""
        async with self._engine.connect() as conn:
            accounts = await pending_accounts(conn)
        if not accounts:
            return 0
        return await self.wake(accounts)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.sweep_interval)
            try:
                added = await self.sweep_once()
                if added:
                    log.info("sweeper woke the workers for %d accounts with unprocessed "
                             "events", added)
            except Exception as exc:  # noqa: BLE001 - keep sweeping; Redis may come back
                log.warning("sweep failed: %s", exc)
