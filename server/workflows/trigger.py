"""What a dispatched event does to workflows, inside the event's transaction: it stops the
waiting runs it is a stop event for, then starts a run of every active workflow it
triggers whose conditions, unique policy and "skip if running" allow it.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from server.db.dialect import serialise
from server.db.models import Event, table_of, utcnow
from server.workflows import runs, store
from server.workflows.conditions import holds
from server.workflows.contacts import find_contact
from server.workflows.policy import needs_history, refusal

log = logging.getLogger(__name__)
_events = table_of(Event)


@dataclass(frozen=True, slots=True)
class IncomingEvent:
    id: int
    account_id: int
    event_type_key: str
    key_value: str
    params: list[tuple[str, Any]]


@dataclass(slots=True)
class TriggerResult:
    started: list[int] = field(default_factory=list)
    stopped: list[int] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)


async def _contact_of(conn: AsyncConnection, event: IncomingEvent) -> tuple[int | None, bool]:
    row = (await conn.execute(select(_events.c.contact_id, _events.c.is_past)
                              .where(_events.c.id == event.id))).first()
    if row is None:
        return None, True
    if row.contact_id is not None:
        return int(row.contact_id), bool(row.is_past)
    return await find_contact(conn, account_id=event.account_id, params=event.params), \
        bool(row.is_past)


async def _stop_waiting(conn: AsyncConnection, event: IncomingEvent, contact_id: int | None,
                        worker: str, out: TriggerResult) -> None:
    for run in await runs.waiting_runs(conn, account_id=event.account_id, contact_id=contact_id,
                                       key_value=event.key_value):
        definition = await store.load_version(conn, workflow_id=run.workflow_id,
                                              version=run.version)
        if event.event_type_key in definition.stop_event_types:
            block = definition.blocks.get(run.current_block or "", {})
            await runs.stop_run(conn, run, block_type=str(block.get("type", "")),
                                reason=f"stop event {event.event_type_key} ({event.id})",
                                stop_event_id=event.id, worker=worker)
            out.stopped.append(run.id)


async def _serialise(conn: AsyncConnection, workflow_id: int, subject: str) -> None:
    """Two events of one contact may be processed at once; policies need them in order."""
    await serialise(conn, workflow_id, zlib.crc32(subject.encode()) - 2**31)


async def handle_event(conn: AsyncConnection, event: IncomingEvent, *, worker: str = ""
                       ) -> TriggerResult:
    out = TriggerResult()
    contact_id, is_past = await _contact_of(conn, event)
    if is_past:
        return out  # past events feed history only
    await _stop_waiting(conn, event, contact_id, worker, out)
    params = dict(event.params)
    for wf_id, version, d in await store.active_for_event(
            conn, account_id=event.account_id, event_type_key=event.event_type_key):
        if not holds(d.conditions, params=params):
            out.skipped.append((wf_id, "conditions"))
            continue
        await _serialise(conn, wf_id, str(contact_id) if contact_id else event.key_value)
        reason = None
        if needs_history(d):
            prior = await runs.prior_runs(conn, workflow_id=wf_id, contact_id=contact_id,
                                          key_value=event.key_value)
            reason = refusal(d, contact_id=contact_id, key_value=event.key_value, now=utcnow(),
                             prior=prior)
        if reason:
            out.skipped.append((wf_id, reason))
            continue
        trigger = {"eventTypeKey": event.event_type_key, "keyValue": event.key_value,
                   "params": [{"name": n, "value": v} for n, v in event.params]}
        run_id = await runs.insert_run(conn, account_id=event.account_id, workflow_id=wf_id,
                                       version=version, event_id=event.id, contact_id=contact_id,
                                       key_value=event.key_value, start=d.start, trigger=trigger)
        out.started.append(run_id)
    return out
