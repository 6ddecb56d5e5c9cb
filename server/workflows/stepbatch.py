"""A batch of claimed due steps (``claims``), each run's next step, executed together.

1. One read: the runs' definitions (cached) and, for runs starting or leaving a timer, the
   stop events that end them (``runs.first_events_since``).
2. External blocks (email, webhook) run side by side over ``BatchRuntime``: reads
   gathered, letters rendered together, earlier delivery records read in one query (a
   record already ``sent`` is not sent again), then the sends; how each ended is written
   with the step records, below. A repeat after a crash carries the same Message-ID /
   Idempotency-Key.
3. One transaction records every step: the runs are locked and each must still be at the
   claimed step (else it is left alone: another worker moved it on); database blocks run
   here, so their writes commit with their step record; then all step records and run
   advances in one statement each, and the segment membership of the contacts that
   contact blocks wrote (the runs its changes start, as for the contact API).

A step that asks to be tried later (``RetryLater``, or an error of its own) is due again
after ``backoff``, up to ``MAX_TRIES`` tries, then recorded failed. If the transaction
fails, the steps are recorded again one per transaction, so one step at fault is retried
alone and never holds up the others.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from server.db.models import utcnow
from server.processing.turns import write_turn
from server.workflows import deliveries, runs, store
from server.workflows.batchruntime import BatchRuntime
from server.workflows.blocks import block_type, execute
from server.workflows.blocks.base import BlockType
from server.workflows.engine import EngineDeps, EngineRuntime
from server.workflows.runtime import RetryLater, StepOutcome, backoff
from server.workflows.segment_runs import contacts_changed_runs

__all__ = ["MAX_TRIES", "Executed", "run_steps"]

log = logging.getLogger(__name__)
# Tries of one step before it is recorded failed ("gave up").
MAX_TRIES = 8


@dataclass(slots=True)
class _Step:
    run: runs.RunRow
    block: dict[str, Any]
    kind: BlockType | None
    stop_event: int | None = None
    # Decided before the commit: an external block's outcome, or a step given up on.
    outcome: StepOutcome | None = None
    # How its effect ended, its delivery record written with the step record.
    closed: list[deliveries.Ended] = field(default_factory=list)
    retry: str | None = None

    @property
    def external(self) -> bool:
        return self.kind is not None and self.kind.external

    @property
    def final_try(self) -> bool:
        return self.run.tries + 1 >= MAX_TRIES


@dataclass(slots=True)
class Executed:
    """What a batch did: steps recorded, retried later, found moved on (stale)."""

    recorded: int = 0
    retried: int = 0
    stale: int = 0
    # Runs whose next step is due at once (moved on without a wait).
    due_next: int = 0
    # Events written by Launch event blocks, to dispatch after the commit.
    launched: list[int] = field(default_factory=list)
    # Contacts written by contact blocks, by account, re-evaluated before the commit.
    written: dict[int, set[int]] = field(default_factory=dict)


async def run_steps(deps: EngineDeps, claimed: list[runs.RunRow]) -> Executed:
    """Execute and record the next step of each claimed run (see the module docstring)."""
    steps = await _prepare(deps, claimed)
    external = [s for s in steps if s.external and s.stop_event is None]
    if external:
        await _run_external(deps, external)
    try:
        return await _commit(deps, steps)
    except Exception as exc:  # noqa: BLE001 - recorded one by one below
        if len(steps) == 1:
            return await _retry_alone(deps, steps[0], exc)
        log.warning("a batch of %d steps failed to commit (%s: %s); recording them one by one",
                    len(steps), type(exc).__name__, exc)
    out = Executed()
    for step in steps:
        try:
            one = await _commit(deps, [step])
        except Exception as exc:  # noqa: BLE001 - this step's own fault: tried again later
            one = await _retry_alone(deps, step, exc)
        out.recorded += one.recorded
        out.retried += one.retried
        out.stale += one.stale
        out.due_next += one.due_next
        out.launched += one.launched
    return out


async def _prepare(deps: EngineDeps, claimed: list[runs.RunRow]) -> list[_Step]:
    steps: list[_Step] = []
    wanted: list[tuple[runs.RunRow, tuple[str, ...]]] = []
    async with deps.engine.connect() as conn:
        for run in claimed:
            d = await store.load_version(conn, workflow_id=run.workflow_id, version=run.version)
            block = d.blocks[run.current_block or d.start]
            steps.append(_Step(run=run, block=block, kind=block_type(block["type"])))
            if run.status == "waiting" or run.step_seq == 1:  # stop rules: at start, after timers
                wanted.append((run, d.stop_event_types))
        stops = await runs.first_events_since(conn, wanted)
    for step in steps:
        step.stop_event = stops.get(step.run.id)
    return steps


async def _run_external(deps: EngineDeps, steps: list[_Step]) -> None:
    # All at once, so that their reads, renders and records go together; the SMTP pool
    # bounds the connections per server.
    rt = BatchRuntime(deps)

    async def one(step: _Step) -> None:
        try:
            step.outcome = await execute(step.block, step.run.view(), rt)
            return
        except RetryLater as exc:
            reason = exc.reason
        except Exception as exc:  # this step's fault, not the batch's
            log.exception("run %s step %s failed", step.run.id, step.run.step_seq)
            reason = f"{type(exc).__name__}: {exc}"
        if step.final_try:
            step.outcome = StepOutcome("failed", None, detail={"reason": f"gave up: {reason}"})
        else:
            step.retry = reason

    await asyncio.gather(*(one(s) for s in steps))
    by_run = {s.run.id: s for s in steps}
    for ended in rt.closed:
        by_run[ended.run.run_id].closed.append(ended)


async def _commit(deps: EngineDeps, steps: list[_Step]) -> Executed:
    out = Executed()
    done: list[tuple[runs.RunRow, dict[str, Any], StepOutcome]] = []
    async with write_turn(deps.engine, urgent=True) as conn:
        locked = await runs.lock_runs(conn, [s.run.id for s in steps])
        # The records of what was sent (or tried), first: a stale step's too.
        await deliveries.record_deliveries(conn, [c for s in steps for c in s.closed])
        for step in steps:
            run = step.run
            at = locked.get(run.id)  # (step seq, status) now
            if at is None or at[0] != run.step_seq or at[1] not in runs.ACTIVE:
                out.stale += 1  # another worker moved it on (its claim had lapsed)
                continue
            if step.stop_event is not None:
                await runs.stop_run(conn, run, block_type=step.block["type"],
                                    reason="stop event", stop_event_id=step.stop_event,
                                    worker=deps.worker)
                out.recorded += 1
            elif step.retry is not None:
                await runs.retry_later(conn, run, reason=step.retry, due=utcnow() + backoff(
                    run.tries + 1, base=deps.settings.workflow_retry_base))
                out.retried += 1
            else:
                done.append((run, step.block, await _outcome(deps, conn, step, run, out)))
        statuses = await runs.record_steps(conn, done, worker=deps.worker)
        # One call per account, accounts in order: the contact locks are taken in one
        # order everywhere (server.segments.membership), never step by step.
        for account_id, contact_ids in sorted(out.written.items()):
            await contacts_changed_runs(conn, account_id=account_id, contact_ids=contact_ids,
                                        now=utcnow(), reason="contact changed (workflow)",
                                        worker=deps.worker)
    out.recorded += len(done)
    out.due_next += statuses.count("running")
    return out


async def _outcome(deps: EngineDeps, conn: AsyncConnection, step: _Step, run: runs.RunRow,
                   out: Executed) -> StepOutcome:
    """An external block's outcome (or a give-up), decided before; else the database
    block runs now, on the transaction's connection."""
    if step.outcome is None:
        rt = EngineRuntime(deps, run, conn)
        outcome = await execute(step.block, run.view(), rt)
        out.launched += rt.launched
        if rt.written:
            out.written.setdefault(run.account_id, set()).update(rt.written)
        return outcome
    if step.outcome.status == "failed":
        await deliveries.fail_queued(conn, run_id=run.id, seq=run.step_seq,
                                     reason=str(step.outcome.detail.get("reason", "")))
    return step.outcome


async def _retry_alone(deps: EngineDeps, step: _Step, exc: BaseException) -> Executed:
    """The step's own transaction failed: try it again later, or record it failed."""
    reason = f"{type(exc).__name__}: {exc}"
    log.warning("run %s step %s not recorded (%s); %s", step.run.id, step.run.step_seq, reason,
                "giving up" if step.final_try else "trying again later")
    again = _Step(run=step.run, block=step.block, kind=step.kind, closed=step.closed)
    if step.final_try:
        again.outcome = StepOutcome("failed", None, detail={"reason": f"gave up: {reason}"})
    else:
        again.retry = reason
    return await _commit(deps, [again])
