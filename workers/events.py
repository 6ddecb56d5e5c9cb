"""The ``process_event`` job: hands one stored event to every processor, exactly once.

``processed_at`` is set in the same transaction as the processors' database effects,
so a retried or duplicated job finds it set and does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from arq.worker import Retry
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from server.db.dialect import lock_rows
from server.db.models import Event, EventType, as_utc, table_of, utcnow

log = logging.getLogger(__name__)
# Tries of one event (with doubling delays) before it is recorded as failed.
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


Processor = Callable[[AsyncConnection, DispatchedEvent, dict[str, Any]], Awaitable[None]]


async def load_for_update(conn: AsyncConnection, event_id: int) -> tuple[DispatchedEvent, bool] | None:
    query = (select(_events.c.id, _events.c.account_id, _types.c.key, _events.c.key_value,
                    _events.c.body, _events.c.received_at, _events.c.processed_at,
                    _types.c.create_contacts)
             .join(_types, _types.c.id == _events.c.event_type_id)
             .where(_events.c.id == event_id))
    # Locked first, so two workers cannot both see the event unprocessed.
    row = (await lock_rows(conn, query, table=_events, where=_events.c.id == event_id,
                           of=_events)).first()
    if row is None:
        return None
    body = orjson.loads(row.body)
    event = DispatchedEvent(
        id=int(row.id), account_id=int(row.account_id), event_type_key=row.key,
        key_value=row.key_value, params=[(p["name"], p["value"]) for p in body["params"]],
        body=body, received_at=as_utc(row.received_at), create_contacts=bool(row.create_contacts))
    return event, row.processed_at is not None


async def process_event(ctx: dict[str, Any], event_id: int) -> str:
    try:
        return await _process(ctx, event_id)
    except Exception as exc:
        tries = int(ctx.get("job_try") or 1)
        if tries < PROCESS_TRIES:
            base = ctx["settings"].process_retry_base if "settings" in ctx else 1.0
            log.warning("event %s failed on try %d (%s); retrying", event_id, tries, exc)
            raise Retry(defer=min(base * 2 ** (tries - 1), 300.0)) from exc
        log.exception("event %s failed %d times; giving up, see events.process_error",
                      event_id, tries)
        await _give_up(ctx["engine"], event_id, f"{type(exc).__name__}: {exc}"[:2000])
        return "failed"


async def _give_up(engine: Any, event_id: int, error: str) -> None:
    """Record the failure so the sweeper stops re-dispatching the event; it stays visible."""
    async with engine.begin() as conn:
        await conn.execute(update(_events).where(
            (_events.c.id == event_id) & _events.c.processed_at.is_(None))
            .values(processed_at=utcnow(), process_error=error))


async def _process(ctx: dict[str, Any], event_id: int) -> str:
    engine = ctx["engine"]
    processors: list[Processor] = ctx.get("processors", [])
    # Processors append coroutine functions here that must run only after the commit
    # (enqueueing jobs that read what the transaction wrote); a crash before they run is
    # covered by the features' sweepers.
    post_commit: list[Callable[[], Awaitable[None]]] = []
    ctx["post_commit"] = post_commit
    async with engine.begin() as conn:
        loaded = await load_for_update(conn, event_id)
        if loaded is None:
            log.warning("event %s is not in the database; nothing to do", event_id)
            return "missing"
        event, done = loaded
        if done:
            return "already processed"
        for processor in processors:
            await processor(conn, event, ctx)
        await conn.execute(update(_events).where(_events.c.id == event_id)
                           .values(processed_at=utcnow()))
    for action in post_commit:
        try:
            await action()
        except Exception:
            log.exception("post-commit action of event %s failed", event_id)
    return "processed"
