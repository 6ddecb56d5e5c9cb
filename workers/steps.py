"""The step pump of a worker process: loops that claim due workflow steps in batches
(``server.workflows.claims``) and execute them (``server.workflows.stepbatch``), and the
heartbeat that keeps this process's claims alive while it works (docs/workers.md, "Steps").

A loop with nothing to do waits for a wake-up on ``<prefix>steps:wake`` (pushed after an
event batch starts runs, or by a loop that claimed a full batch and leaves the rest to
others), for the next step to fall due, or ``POLL_SECONDS``, whichever comes first; so a
dead worker's lapsed claims are taken over within ``CLAIM_SECONDS + POLL_SECONDS``.

Hand-offs: an event batch of this process that starts runs claims their first steps in its
own transaction, as many as ``room`` allows, and ``hand_off`` runs them after its commit
as a batch of their own, at most ``HANDOFF_STEPS`` such steps at once (past that its runs
wait for the loops' claims like any due step); so a new run's first step waits neither for a wake-up nor for
a claiming transaction, which on SQLite queued for the write lock behind event batches.

Render processes: once any workflow is active (looked for at each idle wait until then), the
pump starts its render processes (``RenderPool.warm``), so its first letters do not wait
for a process to start (~1 s on a loaded machine); a deployment without workflows starts none.

Fairness: a batch still running after ``SLOW_BATCH_SECONDS`` (it waits on slow targets) goes
on in the background and its loop claims again; an account holding ``SLOW_ACCOUNT_STEPS``
steps or more in background batches is left out of claims until they end (unless nobody
else's steps are due and a background place is free), so one account's slow webhooks or
SMTP server do not hold every loop, nor other accounts' steps behind theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import Any

from redis.exceptions import RedisError

from server.config import Settings
from server.db.models import utcnow
from server.ingest.dispatch import Dispatcher
from server.workflows import store
from server.workflows.claims import (
    HEARTBEAT_SECONDS,
    claim_due,
    next_due,
    renew_claims,
    unclaimed_due,
)
from server.workflows.engine import EngineDeps
from server.workflows.runs import RunRow
from server.workflows.stepbatch import Executed, run_steps
from workers.events import redis_client

__all__ = ["HANDOFF_STEPS", "LOOPS", "MAX_SLOW_BATCHES", "STEP_BATCH", "StepPump",
           "wake_steps"]

log = logging.getLogger(__name__)
STEP_BATCH = 200
LOOPS = 2
POLL_SECONDS = 0.5
SLOW_BATCH_SECONDS = 1.0
# Background batches per pump at most (then a loop waits for its own batch), and the
# steps an account may hold in them before it is left out of claims.
MAX_SLOW_BATCHES = 2
SLOW_ACCOUNT_STEPS = STEP_BATCH // 4
# Handed-off first steps (``StepPump.hand_off``) in batches running at once, at most; by
# steps, not batches: at 200 events/s a process's event batches hand off a few dozen each,
# and each batch lives until its record commits (1 s and more under load).
HANDOFF_STEPS = 2 * STEP_BATCH


def steps_wake_key(settings: Settings) -> str:
    return f"{settings.redis_prefix}steps:wake"


async def wake_steps(redis: Any, settings: Settings) -> None:
    """Tell the step pumps that steps are due now (a hint: they poll anyway)."""
    key = steps_wake_key(settings)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.lpush(key, "1")
        pipe.ltrim(key, 0, 15)
        await pipe.execute()


class StepPump:
    def __init__(self, *, deps: EngineDeps, settings: Settings, redis: Any, owner: str,
                 loops: int = LOOPS, batch_size: int = STEP_BATCH) -> None:
        assert settings.redis_url
        self._deps, self._settings, self._redis = deps, settings, redis
        self._owner = owner
        self._loops = loops
        self._batch = batch_size
        self._key = steps_wake_key(settings)
        self._held: set[int] = set()
        self._tasks: list[asyncio.Task[None]] = []
        # Batches left running in the background: the steps of each account they hold.
        self._slow: dict[asyncio.Task[Executed], Counter[int]] = {}
        self._wakes: set[asyncio.Task[None]] = set()
        # Batches of handed-off first steps, running: their steps.
        self._handed: dict[asyncio.Task[None], int] = {}
        self._warm: asyncio.Task[None] | None = None

    @property
    def owner(self) -> str:
        """The claims' owner: an event batch claims the steps it hands off in this name."""
        return self._owner

    def room(self) -> int:
        """How many first steps an event batch may claim now for ``hand_off``."""
        if not self._tasks:
            return 0
        return max(0, min(self._batch, HANDOFF_STEPS - sum(self._handed.values())))

    def hand_off(self, claimed: list[RunRow]) -> None:
        """Run these steps, claimed for this pump by the event batch that started their
        runs (just committed), now, beside the loops; the heartbeat keeps their claims."""
        if not claimed:
            return
        task = asyncio.create_task(self._run_handed(claimed), name="steps-handed")
        self._handed[task] = len(claimed)
        task.add_done_callback(lambda t: self._handed.pop(t, None))

    async def _run_handed(self, claimed: list[RunRow]) -> None:
        try:
            done = await self._execute(claimed)
            if done.due_next:  # their next steps are due now: no loop ran this batch to see
                await self._wake_others()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("a batch of handed-off workflow steps failed; its steps are claimed "
                          "again when their claims lapse")

    def start(self) -> None:
        for n in range(self._loops):
            self._tasks.append(asyncio.create_task(self._loop_forever(), name=f"steps-{n}"))
        self._tasks.append(asyncio.create_task(self._heartbeat(), name="steps-heartbeat"))

    async def stop(self) -> None:
        """Stop claiming; a batch in flight is cancelled (its claims lapse; another worker
        runs its steps again)."""
        tasks = [*self._tasks, *self._slow, *self._handed,
                 *([self._warm] if self._warm is not None else [])]
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    async def run_once(self) -> int:
        """Claim one batch of due steps and execute it (or leave it to finish in the
        background once it is slow); how many steps were claimed."""
        skip = self._slow_accounts()
        claimed = await claim_due(self._deps.engine, owner=self._owner, limit=self._batch,
                                  skip_accounts=skip)
        if not claimed and skip and len(self._slow) < MAX_SLOW_BATCHES:
            # Only the slow accounts' steps are due: they may take the free place.
            claimed = await claim_due(self._deps.engine, owner=self._owner, limit=self._batch)
        if not claimed:
            return 0
        if len(claimed) == self._batch:
            await self._wake_others()
        task = asyncio.create_task(self._execute(claimed))
        try:
            wait = None if len(self._slow) >= MAX_SLOW_BATCHES else SLOW_BATCH_SECONDS
            await asyncio.wait([task], timeout=wait)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if task.done():
            task.result()  # its failure is the loop's to log
        else:
            self._slow[task] = Counter(r.account_id for r in claimed)
            task.add_done_callback(self._slow_done)
        return len(claimed)

    async def _execute(self, claimed: list[RunRow]) -> Executed:
        ids = {r.id for r in claimed}
        self._held |= ids
        try:
            done = await run_steps(self._deps, claimed)
        finally:
            self._held -= ids
        if done.launched:
            await Dispatcher(self._redis, self._deps.engine, settings=self._settings).enqueue(
                done.launched)
        return done

    def _slow_accounts(self) -> set[int]:
        held: Counter[int] = Counter()
        for accounts in self._slow.values():
            held.update(accounts)
        return {account for account, n in held.items() if n >= SLOW_ACCOUNT_STEPS}

    def _slow_done(self, task: asyncio.Task[Executed]) -> None:
        self._slow.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("a batch of workflow steps failed; its steps are claimed again when "
                      "their claims lapse", exc_info=task.exception())
        # Its accounts' steps may be claimed again: tell the loops rather than wait a poll.
        wake = task.get_loop().create_task(self._wake_others())
        self._wakes.add(wake)
        wake.add_done_callback(self._wakes.discard)

    async def _loop_forever(self) -> None:
        blocking = redis_client(self._settings)
        try:
            while True:
                try:
                    if await self._due() and await self.run_once():
                        continue
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("a batch of workflow steps failed; its steps are claimed "
                                  "again when their claims lapse")
                    await asyncio.sleep(1)
                await self._wait(blocking)
        finally:
            await blocking.aclose()

    async def _due(self) -> bool:
        async with self._deps.engine.connect() as conn:
            return await unclaimed_due(conn)

    async def _wait(self, blocking: Any) -> None:
        timeout = POLL_SECONDS
        with contextlib.suppress(Exception):
            async with self._deps.engine.connect() as conn:
                if self._warm is None and await store.any_active(conn):
                    self._warm = asyncio.create_task(self._deps.renderer.warm(),
                                                     name="render-warm")
                due = await next_due(conn)
            if due is not None:
                timeout = min(timeout, max(0.01, (due - utcnow()).total_seconds()))
        try:
            await blocking.blpop([self._key], timeout=timeout)
        except (RedisError, OSError) as exc:
            log.warning("waiting for a step wake-up failed (%s); polling", exc)
            await asyncio.sleep(timeout)

    async def _wake_others(self) -> None:
        try:
            await wake_steps(self._redis, self._settings)
        except (RedisError, OSError) as exc:
            log.warning("waking the other step pumps failed: %s", exc)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            if not self._held:
                continue
            try:
                await renew_claims(self._deps.engine, owner=self._owner,
                                   run_ids=sorted(self._held))
            except Exception as exc:  # noqa: BLE001 - the next beat tries again
                log.warning("renewing the step claims failed: %s", exc)
