"""Hand committed events to the arq workers through Redis; sweep up what did not get there.

The database row is the source of truth. A job is enqueued right after commit; if Redis
is down the event stays unprocessed and the sweeper enqueues it later. Enqueue is
idempotent by job id (``<prefix>event:<id>``), and the worker records ``processed_at``
atomically with its effects, so each stored event is handled once as workers see it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from arq.connections import ArqRedis
from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from server.config import Settings
from server.db.models import Event, table_of, utcnow

log = logging.getLogger(__name__)
_events = table_of(Event)

PROCESS_EVENT = "process_event"
JOB_EXPIRES_MS = 7 * 24 * 3600 * 1000

# Same keys and job format as arq's enqueue_job, for many jobs in one round trip:
# a job is added only if neither its job key nor its result key exists.
ENQUEUE_LUA = """
local queue = KEYS[1]
local added = 0
for i = 1, #ARGV, 4 do
  local job_id, payload, score, ttl = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if redis.call('EXISTS', '""" + result_key_prefix + """' .. job_id) == 0 then
    if redis.call('SET', '""" + job_key_prefix + """' .. job_id, payload, 'PX', ttl, 'NX') then
      redis.call('ZADD', queue, score, job_id)
      added = added + 1
    end
  end
end
return added
"""


def event_job_id(settings: Settings, event_id: int) -> str:
    return f"{settings.redis_prefix}event:{event_id}"


def enqueue_args(settings: Settings, event_ids: Sequence[int], *,
                 serializer: Any = None) -> list[Any]:
    """ARGV of ``ENQUEUE_LUA`` for these events (arq's job format, enqueued now)."""
    now = timestamp_ms()
    args: list[Any] = []
    for event_id in event_ids:
        payload = serialize_job(PROCESS_EVENT, (event_id,), {}, None, now, serializer=serializer)
        args += [event_job_id(settings, event_id), payload, now, JOB_EXPIRES_MS]
    return args


class Dispatcher:
    """Enqueues process_event jobs for committed events; runs the sweeper."""

    def __init__(self, redis: ArqRedis, engine: AsyncEngine, *, settings: Settings) -> None:
        self._redis = redis
        self._engine = engine
        self._settings = settings
        self._script = redis.register_script(ENQUEUE_LUA)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._cursor = 0

    async def enqueue(self, event_ids: Sequence[int]) -> int:
        """Enqueue jobs for these events now; returns how many were new to Redis."""
        args = enqueue_args(self._settings, event_ids, serializer=self._redis.job_serializer)
        return int(await self._script(keys=[self._settings.queue_name], args=args))

    async def after_commit(self, event_ids: list[int]) -> None:
        """Called by the writer; the enqueue runs beside the answers, never delaying them."""
        task = asyncio.create_task(self._enqueue_quietly(event_ids))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _enqueue_quietly(self, event_ids: list[int]) -> None:
        try:
            await self.enqueue(event_ids)
        except Exception as exc:  # noqa: BLE001 - any Redis failure leaves it to the sweeper
            log.warning("enqueue of %d events failed (%s); the sweeper will retry",
                        len(event_ids), exc)

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

    async def sweep_once(self, *, min_age: timedelta | None = None, limit: int = 1000) -> int:
        """Enqueue unprocessed events older than min_age, walking the table by id."""
        age = min_age if min_age is not None else timedelta(seconds=self._settings.sweep_interval * 2)
        cutoff = utcnow() - age
        async with self._engine.connect() as conn:
            rows = (await conn.execute(
                select(_events.c.id).where(and_(
                    _events.c.processed_at.is_(None),
                    _events.c.id > self._cursor,
                    _events.c.received_at < cutoff,
                )).order_by(_events.c.id).limit(limit)
            )).scalars().all()
        self._cursor = int(rows[-1]) if len(rows) == limit else 0
        if not rows:
            return 0
        return await self.enqueue([int(r) for r in rows])

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.sweep_interval)
            try:
                added = await self.sweep_once()
                if added:
                    log.info("sweeper enqueued %d events that had not reached the workers", added)
            except Exception as exc:  # noqa: BLE001 - keep sweeping; Redis may come back
                log.warning("sweep failed: %s", exc)
