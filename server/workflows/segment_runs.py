"""Runs started by segment membership changes: each change (``server.segments.membership.
Change``) becomes a trigger event of its key (``segment/<id>/<entered|left>``) for
``server.workflows.trigger.handle_batch``, in the transaction that made the change. The
run's contact is the member and its event (id, key value, params) the event that caused
the change; a change no event caused (a time window moving on) has the negated change id
as its event id, the contact's email as key value and no params. Contact writes outside
events (``contacts_changed_runs``: the contact API, the subscription form, workflow
contact blocks) and recounts of a segment built before start runs too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from server.contacts.tables import CONTACTS
from server.db.models import Event, table_of
from server.segments.membership import Change, contacts_changed
from server.workflows.segments import segment_trigger_key
from server.workflows.trigger import BatchEvent, account_workflows, handle_batch

__all__ = ["contacts_changed_runs", "start_segment_runs"]

_events = table_of(Event)


async def _trigger_events(conn: AsyncConnection, account_id: int, changes: Sequence[Change]
                          ) -> list[BatchEvent]:
    caused = sorted({c.event_id for c in changes if c.event_id is not None})
    events: dict[int, Any] = {}
    if caused:
        events = {int(r.id): r for r in await conn.execute(
            select(_events.c.id, _events.c.key_value, _events.c.body).where(
                (_events.c.account_id == account_id) & _events.c.id.in_(caused)))}
    uncaused = sorted({c.contact_id for c in changes if c.event_id not in events})
    emails: dict[int, str | None] = {}
    if uncaused:
        emails = {int(r.id): r.email for r in await conn.execute(
            select(CONTACTS.c.id, CONTACTS.c.email).where(
                (CONTACTS.c.account_id == account_id) & CONTACTS.c.id.in_(uncaused)))}
    out = []
    for c in changes:
        key = segment_trigger_key(c.segment_id, c.change)
        cause = events.get(c.event_id) if c.event_id is not None else None
        if cause is not None:
            params = [(p["name"], p.get("value"))
                      for p in orjson.loads(cause.body).get("params", ())]
            out.append(BatchEvent(id=int(cause.id), event_type_key=key,
                                  key_value=str(cause.key_value), params=params,
                                  contact_id=c.contact_id))
        elif c.id is not None:
            out.append(BatchEvent(id=-c.id, event_type_key=key,
                                  key_value=emails.get(c.contact_id) or str(c.contact_id),
                                  params=[], contact_id=c.contact_id))
    return out


async def start_segment_runs(conn: AsyncConnection, *, account_id: int,
                             changes: Sequence[Change], worker: str = "") -> list[int]:
    """Start, in the caller's transaction, the runs these membership changes trigger; the
    ids of the runs started (their first steps are the caller's to enqueue after commit)."""
    if not changes:
        return []
    triggers = (await account_workflows(conn, account_id)).triggers
    changes = [c for c in changes if segment_trigger_key(c.segment_id, c.change) in triggers]
    if not changes:  # the common case: no workflow starts on these segments
        return []
    events = await _trigger_events(conn, account_id, changes)
    result = await handle_batch(conn, account_id=account_id, events=events, worker=worker)
    return result.started


async def contacts_changed_runs(conn: AsyncConnection, *, account_id: int,
                                contact_ids: Iterable[int], now: datetime,
                                reason: str = "contact changed", worker: str = "api"
                                ) -> list[int]:
    """Membership after contacts were written outside an event (the contact API, the
    subscription form, a workflow's contact block, a deletion, an erasure) and the runs its
    changes start, in the caller's transaction; the step pumps take the runs' first steps
    within their poll (``workers.steps``)."""
    changes = await contacts_changed(conn, account_id=account_id, contact_ids=contact_ids,
                                     now=now, reason=reason)
    return await start_segment_runs(conn, account_id=account_id, changes=changes,
                                    worker=worker)
