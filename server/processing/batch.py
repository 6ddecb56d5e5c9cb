"""One batch of an account's events: claimed in commit (id) order and processed in one
transaction with the lease renewal first and ``processed_at`` last, so the batch's effects
and its record commit together or not at all, and a repeated batch finds nothing to do.

Processors (``BatchProcessor``) see the whole batch: the events in id order, and the
contacts the contact linker found (``Batch.contacts``). They run inside the transaction,
in the order of ``ctx["batch_processors"]``; work that must follow the commit (enqueueing
jobs that read what it wrote) goes to ``Batch.post_commit``.

A batch whose processing raises is rolled back and split in halves, each retried in order,
down to the one event that fails: it is tried ``PROCESS_TRIES`` times, then recorded on its
own (``processed_at`` with ``process_error``), and the events after it go on. A database
that is unreachable or locked (``OperationalError``) is not an event's fault: the drain
stops and the account is woken again later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import and_, select, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.db.models import Event, EventType, as_utc, table_of, utcnow
from server.processing.leases import Held, Lease, give_up, release, renew, take
from server.processing.turns import write_turn

__all__ = ["BATCH_SIZE", "PROCESS_TRIES", "Batch", "BatchProcessor", "DispatchedEvent", "Drain",
           "LeaseLost", "Processor", "drain_partition", "each_event", "process_pending"]

log = logging.getLogger(__name__)
BATCH_SIZE = 500
# Tries of one failing event (after its batch was split down to it) before it is
# recorded failed.
PROCESS_TRIES = 5
_events = table_of(Event)
_types = table_of(EventType)


@dataclass(frozen=True, slots=True)
class DispatchedEvent:
    id: int
    account_id: int
    event_type_key: str
    key_value: str
    params: list[tuple[str, Any]]
    body: dict[str, Any]
    received_at: Any
    create_contacts: bool
    # Already linked (an event written with its contact), else None.
    contact_id: int | None = None
    # A past event (sent with ``occurred``): linked and counted for segments like any
    # other, but it starts and stops no workflow.
    past: bool = False


@dataclass(slots=True)
class Batch:
    account_id: int
    events: list[DispatchedEvent]
    worker: str
    # Event id -> its contact's id, filled by the contact linker (the first processor).
    contacts: dict[int, int] = field(default_factory=dict)
    # Run after the commit, in order; a crash before they run is covered by sweepers.
    post_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def types(self) -> set[str]:
        return {e.event_type_key for e in self.events}


BatchProcessor = Callable[[AsyncConnection, Batch, dict[str, Any]], Awaitable[None]]
# The one-event form (tests, simple features): ``each_event`` makes it a batch processor.
Processor = Callable[[AsyncConnection, DispatchedEvent, dict[str, Any]], Awaitable[None]]


def each_event(processor: Processor) -> BatchProcessor:
    """A batch processor calling ``processor`` for every event of the batch, in order."""

    async def run(conn: AsyncConnection, batch: Batch, ctx: dict[str, Any]) -> None:
        for event in batch.events:
            await processor(conn, event, ctx)

    run.__name__ = getattr(processor, "__name__", "each_event")
    return run


class LeaseLost(Exception):
    """The lease expired and may be another worker's: this worker stops the drain."""


class DatabaseUnavailable(Exception):
    """The database refused to work (down, locked): nobody's event is at fault."""


def _unavailable(exc: BaseException) -> bool:
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def _event(row: Any) -> DispatchedEvent:
    body = orjson.loads(row.body)
    return DispatchedEvent(
        id=int(row.id), account_id=int(row.account_id), event_type_key=row.key,
        key_value=row.key_value, params=[(p["name"], p["value"]) for p in body["params"]],
        body=body, received_at=as_utc(row.received_at), create_contacts=bool(row.create_contacts),
        contact_id=None if row.contact_id is None else int(row.contact_id),
        past=bool(row.is_past))


def _pending_query(account_id: int) -> Any:
    return (select(_events.c.id, _events.c.account_id, _types.c.key, _events.c.key_value,
                   _events.c.body, _events.c.received_at, _events.c.contact_id,
                   _events.c.is_past, _types.c.create_contacts)
            .join(_types, _types.c.id == _events.c.event_type_id)
            .where(and_(_events.c.account_id == account_id, _events.c.processed_at.is_(None))))


@dataclass(slots=True)
class Drain:
    """What one ``process_pending`` call did."""

    processed: int = 0
    failed: int = 0
    batches: int = 0
    # The lease was another's (``drain_partition``): nothing was done.
    held: Held | None = None


class _HeldElsewhere(Exception):
    def __init__(self, held: Held) -> None:
        super().__init__(held.owner)
        self.held = held


class _Runner:
    def __init__(self, engine: AsyncEngine, partition: int, owner: str, lease: Lease | None,
                 processors: Sequence[BatchProcessor], ctx: dict[str, Any], worker: str) -> None:
        self.engine, self.partition, self.owner = engine, partition, owner
        self.lease, self.processors = lease, processors
        self.ctx, self.worker = ctx, worker
        self.retry_base = float(getattr(ctx.get("settings"), "process_retry_base", 1.0))
        # Give the lease up in the transaction that ends the drain (``drain_partition``).
        self.give_up_last = False
        self.released = False

    @property
    def held_lease(self) -> Lease:
        assert self.lease is not None
        return self.lease

    async def _begin(self, conn: AsyncConnection) -> None:
        if self.lease is None:  # taken in this transaction, held from its commit on
            got = await take(conn, partition=self.partition, owner=self.owner)
            if isinstance(got, Held):
                raise _HeldElsewhere(got)
            self.lease = got
            return
        if not await renew(conn, self.lease):
            raise LeaseLost(f"lease of partition {self.partition} lost")

    async def run(self, conn: AsyncConnection, events: list[DispatchedEvent]) -> Batch:
        """Process ``events`` inside ``conn``'s transaction (lease already renewed)."""
        batch = Batch(account_id=self.partition, events=events, worker=self.worker)
        for processor in self.processors:
            await processor(conn, batch, self.ctx)
        ids = [e.id for e in events]
        done = await conn.execute(update(_events).where(and_(
            _events.c.id.in_(ids), _events.c.processed_at.is_(None)))
            .values(processed_at=utcnow()))
        if done.rowcount != len(ids):  # someone else processed some: ours would repeat them
            raise LeaseLost(f"{len(ids) - done.rowcount} of the batch's events were "
                            "processed meanwhile")
        return batch

    async def next_batch(self, limit: int, *, last: bool = False
                         ) -> tuple[list[DispatchedEvent], Batch | None, BaseException | None]:
        """Claim and process the next batch: (events, the batch if committed, the error).
        With ``give_up_last``, a batch that ends the drain (short, empty or ``last``) gives
        the lease up in its own transaction."""
        events: list[DispatchedEvent] = []
        lease_before = self.lease
        try:
            async with write_turn(self.engine) as conn:
                await self._begin(conn)
                rows = (await conn.execute(_pending_query(self.partition)
                                           .order_by(_events.c.id).limit(limit))).all()
                events = [_event(r) for r in rows]
                batch = await self.run(conn, events) if events else None
                if self.give_up_last and (last or len(events) < limit):
                    await give_up(conn, self.held_lease)
                    self.released = True
        except BaseException as exc:
            # Rolled back: a lease taken in this transaction was never ours, nor given up.
            self.lease, self.released = lease_before, False
            if isinstance(exc, (LeaseLost, _HeldElsewhere, asyncio.CancelledError)):
                raise
            if not isinstance(exc, Exception):
                raise
            if _unavailable(exc):
                raise DatabaseUnavailable(str(exc)) from exc
            if self.lease is None:  # the parts are retried under the lease: take it alone
                async with write_turn(self.engine) as conn:
                    await self._begin(conn)
            return events, None, exc
        return events, batch, None

    async def retry_split(self, ids: list[int], drain: Drain, error: BaseException) -> None:
        """Process these (failed together) in halves, in order; record the one at fault."""
        if len(ids) == 1:
            await self._one(ids[0], drain, error)
            return
        middle = len(ids) // 2
        for part in (ids[:middle], ids[middle:]):
            outcome = await self._try(part)
            if isinstance(outcome, Batch):
                drain.processed += len(outcome.events)
                await _after_commit(outcome)
            elif outcome is not None:
                await self.retry_split(part, drain, outcome)

    async def _try(self, ids: list[int]) -> Batch | BaseException | None:
        try:
            async with write_turn(self.engine) as conn:
                await self._begin(conn)
                rows = (await conn.execute(_pending_query(self.partition)
                                           .where(_events.c.id.in_(ids))
                                           .order_by(_events.c.id))).all()
                if not rows:
                    return None
                return await self.run(conn, [_event(r) for r in rows])
        except (LeaseLost, asyncio.CancelledError):
            raise
        except Exception as exc:
            if _unavailable(exc):
                raise DatabaseUnavailable(str(exc)) from exc
            return exc

    async def _one(self, event_id: int, drain: Drain, error: BaseException) -> None:
        for attempt in range(2, PROCESS_TRIES + 1):
            log.warning("event %s failed (try %d: %s: %s); retrying", event_id, attempt - 1,
                        type(error).__name__, error)
            await asyncio.sleep(min(0.1 * self.retry_base * 2 ** (attempt - 2), 1.0))
            outcome = await self._try([event_id])
            if isinstance(outcome, Batch):
                drain.processed += 1
                await _after_commit(outcome)
                return
            if outcome is None:
                return
            error = outcome
        log.error("event %s failed %d times; recorded failed in events.process_error (%s: %s)",
                  event_id, PROCESS_TRIES, type(error).__name__, error)
        async with write_turn(self.engine) as conn:
            await self._begin(conn)
            await conn.execute(update(_events).where(and_(
                _events.c.id == event_id, _events.c.processed_at.is_(None)))
                .values(processed_at=utcnow(),
                        process_error=f"{type(error).__name__}: {error}"[:2000]))
        drain.failed += 1


async def _after_commit(batch: Batch) -> None:
    for action in batch.post_commit:
        try:
            await action()
        except Exception:
            log.exception("a post-commit action of a batch of account %s failed "
                          "(its sweeper covers it)", batch.account_id)


async def process_pending(engine: AsyncEngine, lease: Lease, *,
                          processors: Sequence[BatchProcessor], ctx: dict[str, Any],
                          worker: str, limit: int = BATCH_SIZE,
                          max_batches: int | None = None) -> Drain:
    """Process the partition's unprocessed events under ``lease``, batch by batch, until
    none is left (or ``max_batches`` ran). Raises ``LeaseLost`` or ``DatabaseUnavailable``
    to stop."""
    runner = _Runner(engine, lease.partition, lease.owner, lease, processors, ctx, worker)
    return await _drain(runner, limit=limit, max_batches=max_batches)


async def drain_partition(engine: AsyncEngine, *, partition: int, owner: str,
                          processors: Sequence[BatchProcessor], ctx: dict[str, Any],
                          worker: str, limit: int = BATCH_SIZE,
                          max_batches: int | None = None) -> Drain:
    """``process_pending`` with the lease taken in the first batch's transaction and given
    up in the last one's, so a drain of one short batch is one write transaction.
    ``Drain.held`` says who held the lease if it was not free (nothing was done). Raises
    ``LeaseLost`` or ``DatabaseUnavailable`` to stop (the lease, if held, given up)."""
    runner = _Runner(engine, partition, owner, None, processors, ctx, worker)
    runner.give_up_last = True
    try:
        return await _drain(runner, limit=limit, max_batches=max_batches)
    except _HeldElsewhere as exc:
        return Drain(held=exc.held)
    finally:
        if runner.lease is not None and not runner.released:
            try:
                await release(engine, runner.lease)
            except Exception as exc:  # noqa: BLE001 - it expires by itself
                log.warning("releasing the lease of partition %s failed: %s", partition, exc)


async def _drain(runner: _Runner, *, limit: int, max_batches: int | None) -> Drain:
    drain = Drain()
    while max_batches is None or drain.batches < max_batches:
        last = max_batches is not None and drain.batches + 1 >= max_batches
        events, batch, error = await runner.next_batch(limit, last=last)
        if not events:
            break
        drain.batches += 1
        if batch is not None:
            drain.processed += len(batch.events)
            await _after_commit(batch)
            if len(events) < limit:
                break  # none was left when it was read; later ones are woken anew
        elif error is not None:
            await runner.retry_split([e.id for e in events], drain, error)
    return drain
