"""The event pump of a worker process: drainers that take woken accounts, lease them and
process their events in batches (``server.processing``), and the sweeper that wakes every
account with unprocessed events (see docs/workers.md).

Each drainer is one lease owner (``<host>:<pid>/<n>``). An account is drained for at most
``TURN_BATCHES`` batches, then woken again behind the others, so one account's backlog
does not keep a drainer from the rest. After its last batch a drainer gives the lease up
and looks once more: an event committed while it held the lease, whose wake-up another
drainer dropped, is found then.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from server.config import Settings
from server.db.models import Event, table_of, utcnow
from server.ingest.dispatch import pending_accounts, wake
from server.processing.batch import (
    BATCH_SIZE,
    PROCESS_TRIES,
    BatchProcessor,
    DatabaseUnavailable,
    DispatchedEvent,
    LeaseLost,
    Processor,
    drain_partition,
)
from server.processing.leases import peek
from server.processing.wake import wake_key, wake_mapping

__all__ = ["PROCESS_TRIES", "DispatchedEvent", "EventPump", "Processor"]

log = logging.getLogger(__name__)
_events = table_of(Event)
# Batches one drainer runs for an account before it lets the next account have a turn.
TURN_BATCHES = 8
DRAINERS = 2


def redis_client(settings: Settings) -> aioredis.Redis:
    """A Redis client of the pumps (a blocking pop holds its own)."""
    assert settings.redis_url
    client: aioredis.Redis = aioredis.Redis.from_url(settings.redis_url, socket_timeout=10,
                                                     socket_connect_timeout=2)
    return client


class EventPump:
    def __init__(self, *, settings: Settings, engine: AsyncEngine,
                 processors: list[BatchProcessor], ctx: dict[str, Any], worker: str,
                 drainers: int = DRAINERS, batch_size: int = BATCH_SIZE) -> None:
        assert settings.redis_url
        self._settings, self._engine, self._ctx = settings, engine, ctx
        self._processors = processors
        self._worker = worker
        self._drainers = drainers
        self._batch_size = batch_size
        self._key = wake_key(settings)
        # Blocking pops hold a connection each; the rest share one.
        self._redis = redis_client(settings)
        self._tasks: list[asyncio.Task[None]] = []
        self._rewake: dict[int, asyncio.TimerHandle] = {}
        # Accounts a drainer of this process holds now: others here skip them at once.
        self._held: set[int] = set()

    def start(self) -> None:
        for n in range(self._drainers):
            self._tasks.append(asyncio.create_task(self._drain_forever(n),
                                                   name=f"event-drainer-{n}"))
        self._tasks.append(asyncio.create_task(self._sweep_forever(), name="event-sweeper"))

    async def stop(self) -> None:
        """Stop taking accounts; a batch in flight is cancelled and rolled back (its lease
        expires; another worker processes it again)."""
        for handle in self._rewake.values():
            handle.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:  # bounded: a drainer stuck on a dead Redis or database must not hang shutdown
            await asyncio.wait(tasks, timeout=5)
        try:
            await asyncio.wait_for(self._redis.aclose(), timeout=2)
        except (TimeoutError, RedisError, OSError) as exc:
            log.warning("closing the wake-up connection failed: %s", exc)

    async def wake(self, accounts: list[int]) -> None:
        await wake(self._redis, self._settings, accounts)

    async def _drain_forever(self, n: int) -> None:
        owner = f"{self._worker}/{n}"
        blocking = redis_client(self._settings)
        try:
            while True:
                try:
                    popped = await blocking.bzpopmin(self._key, timeout=1)
                except (RedisError, OSError) as exc:
                    log.warning("taking a wake-up failed (%s); trying again", exc)
                    await asyncio.sleep(1)
                    continue
                if popped is None:
                    continue
                account = int(popped[1])
                try:
                    await self.drain(account, owner)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("draining account %s failed; it is woken again", account)
                    await asyncio.sleep(1)
                    await self._wake_quietly(account)
        finally:
            await blocking.aclose()

    async def drain(self, account: int, owner: str) -> int:
        """Process the account's events for one turn; how many were processed."""
        if account in self._held:
            return 0  # a drainer here holds it and looks again when it lets go
        self._held.add(account)  # before any await: two drainers here never both go on
        more = False
        # Held by another: its holder looks again when it lets go (and a timer wakes it
        # when the lease ends), so no wake-up here.
        held_elsewhere = True
        try:
            held = await peek(self._engine, partition=account, owner=owner)
            if held is not None:
                self._wake_when(account, held.expires_at)
                return 0
            held_elsewhere = False
            done = await drain_partition(self._engine, partition=account, owner=owner,
                                         processors=self._processors, ctx=self._ctx,
                                         worker=self._worker, limit=self._batch_size,
                                         max_batches=TURN_BATCHES)
            if done.held is not None:
                held_elsewhere = True
                self._wake_when(account, done.held.expires_at)
                return 0
            more = done.batches >= TURN_BATCHES
            return done.processed + done.failed
        except LeaseLost as exc:
            log.warning("account %s: %s; another worker goes on", account, exc)
            return 0
        except DatabaseUnavailable as exc:
            log.warning("account %s: the database is unavailable (%s); waking it again in 1 s",
                        account, exc)
            self._wake_when(account, None, delay=1.0)
            return 0
        finally:
            self._held.discard(account)
            if not held_elsewhere and (more or await self._pending(account)):
                await self._wake_quietly(account)

    async def _pending(self, account: int) -> bool:
        try:
            async with self._engine.connect() as conn:
                found = (await conn.execute(select(_events.c.id).where(and_(
                    _events.c.account_id == account, _events.c.processed_at.is_(None)))
                    .limit(1))).first()
        except Exception as exc:  # noqa: BLE001 - the sweeper looks again
            log.warning("looking for account %s's events failed: %s", account, exc)
            return False
        return found is not None

    async def _wake_quietly(self, account: int) -> None:
        try:
            await self._redis.zadd(self._key, wake_mapping([account]), nx=True)
        except (RedisError, OSError) as exc:
            log.warning("waking account %s failed (%s); the sweeper will", account, exc)

    def _wake_when(self, account: int, at: datetime | None, *, delay: float = 0.0) -> None:
        """Wake the account again when another's lease ends (the holder may be dead)."""
        if account in self._rewake:
            return
        if at is not None:
            delay = max(0.0, (at - utcnow()).total_seconds()) + 0.05
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._rewake.pop(account, None)
            task = asyncio.create_task(self._wake_quietly(account))
            self._tasks.append(task)
            task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

        self._rewake[account] = loop.call_later(delay, fire)

    async def sweep_once(self) -> int:
        async with self._engine.connect() as conn:
            accounts = await pending_accounts(conn)
        if accounts:
            await self.wake(accounts)
        return len(accounts)

    async def sweep(self) -> None:
        """``sweep_once``, a failure logged: the sweeper looks again ``sweep_interval`` later
        (Redis or the database may come back), at start-up as after it."""
        try:
            await self.sweep_once()
        except Exception as exc:  # noqa: BLE001 - keep sweeping; Redis or the DB may come back
            log.warning("event sweep failed: %s; trying again in %ss", exc,
                        self._settings.sweep_interval)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.sweep_interval)
            await self.sweep()
