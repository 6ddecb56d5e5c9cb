"""Membership kept current: re-evaluate given contacts against given segments from what is
stored, write who entered and left (with when and why), and plan each pair's next check.

Three callers, one function (``reevaluate``): the worker after an event batch commits its
contact links (``apply``), contact changes, and the due-time loop and the recount in
``server.segments.loop``. Each contact is re-evaluated from its stored events, so
incremental and full results cannot drift apart; a per-contact lock orders concurrent
evaluations of one contact (the last one to commit read everything the others wrote).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

import orjson
from sqlalchemy import and_, delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from server.contacts.tables import CONTACTS, FIELD_VALUES
from server.db.dialect import insert_ids, serialise
from server.db.models import Event, EventType, as_utc, table_of
from server.segments.definition import CONTACT_FIELDS
from server.segments.evaluate import ContactView, SegmentEvent, evaluate
from server.segments.store import Segment, account_segments
from server.segments.switch import counting_since
from server.segments.tables import SEGMENT_CHANGES, SEGMENT_DUE, SEGMENT_MEMBERS

__all__ = ["Cause", "Change", "CommittedEvent", "apply", "contacts_changed", "reevaluate"]

_events = table_of(Event)
_types = table_of(EventType)
# The first key of the per-contact lock (server.db.dialect.serialise); the second is the id.
CONTACT_LOCK = 0x5E6
# Contacts per query when loading their events, fields and membership.
CHUNK = 500


class CommittedEvent(Protocol):
    """What ``apply`` needs of an event the worker committed."""

    @property
    def id(self) -> int: ...
    @property
    def event_type_key(self) -> str: ...
    @property
    def contact_id(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Cause:
    reason: str
    event_id: int | None = None


@dataclass(frozen=True, slots=True)
class Change:
    segment_id: int
    contact_id: int
    change: str  # "entered" | "left"
    at: datetime
    reason: str
    event_id: int | None
    id: int | None = None  # its segment_changes row, once written


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]


async def _events_of(conn: AsyncConnection, account_id: int, contact_ids: Sequence[int],
                     types: set[str]) -> dict[int, list[SegmentEvent]]:
    out: dict[int, list[SegmentEvent]] = {c: [] for c in contact_ids}
    if not types:
        return out
    # Only types with segmentation on, and their events received since it was switched on.
    since = await counting_since(conn, account_id=account_id, type_keys=types)
    if not since:
        return out
    type_rows = (await conn.execute(select(_types.c.id, _types.c.key).where(
        (_types.c.account_id == account_id) & _types.c.key.in_(sorted(since))))).all()
    key_of = {int(r.id): str(r.key) for r in type_rows}
    if not key_of:
        return out
    at = func.coalesce(_events.c.occurred_at, _events.c.received_at)
    for chunk in _chunks(contact_ids):
        rows = await conn.execute(
            select(_events.c.id, _events.c.contact_id, _events.c.event_type_id,
                   _events.c.body, _events.c.received_at, at.label("at"))
            .where((_events.c.account_id == account_id) & _events.c.contact_id.in_(chunk)
                   & _events.c.event_type_id.in_(sorted(key_of))))
        for row in rows:
            key = key_of[int(row.event_type_id)]
            if as_utc(row.received_at) < since[key]:
                continue
            moment = as_utc(row.at)
            body = orjson.loads(row.body)
            params = {p["name"]: p.get("value") for p in body.get("params", ())}
            out[int(row.contact_id)].append(SegmentEvent(
                id=int(row.id), type_key=key, at=moment, params=params))
    return out


async def _contacts_of(conn: AsyncConnection, account_id: int, contact_ids: Sequence[int]
                       ) -> dict[int, ContactView]:
    columns = [CONTACTS.c[column].label(name) for name, column in CONTACT_FIELDS.items()]
    fields: dict[int, dict[str, Any]] = {}
    extra: dict[int, dict[int, Any]] = {}
    for chunk in _chunks(contact_ids):
        for row in await conn.execute(select(CONTACTS.c.id, *columns).where(
                (CONTACTS.c.account_id == account_id) & CONTACTS.c.id.in_(chunk))):
            values = row._mapping
            fields[int(row.id)] = {name: values[name] for name in CONTACT_FIELDS
                                   if values[name] is not None}
            extra[int(row.id)] = {}
        for row in await conn.execute(select(FIELD_VALUES.c.contact_id, FIELD_VALUES.c.field_id,
                                             FIELD_VALUES.c.value).where(
                (FIELD_VALUES.c.account_id == account_id)
                & FIELD_VALUES.c.contact_id.in_(chunk))):
            try:
                value = orjson.loads(row.value)
            except orjson.JSONDecodeError:
                value = row.value
            extra.setdefault(int(row.contact_id), {})[int(row.field_id)] = value
    return {cid: ContactView(fields=fields[cid], extra=extra.get(cid, {})) for cid in fields}


async def _members_of(conn: AsyncConnection, segment_ids: Sequence[int],
                      contact_ids: Sequence[int]) -> set[tuple[int, int]]:
    found: set[tuple[int, int]] = set()
    for chunk in _chunks(contact_ids):
        rows = await conn.execute(select(SEGMENT_MEMBERS.c.segment_id, SEGMENT_MEMBERS.c.contact_id)
                                  .where(SEGMENT_MEMBERS.c.segment_id.in_(segment_ids)
                                         & SEGMENT_MEMBERS.c.contact_id.in_(chunk)))
        found |= {(int(r.segment_id), int(r.contact_id)) for r in rows}
    return found


async def _lock_contacts(conn: AsyncConnection, contact_ids: Sequence[int]) -> None:
    for contact_id in sorted(contact_ids):  # one order everywhere: no deadlock
        await serialise(conn, CONTACT_LOCK, contact_id)


async def reevaluate(conn: AsyncConnection, *, account_id: int, contact_ids: Iterable[int],
                     segments: Sequence[Segment], now: datetime,
                     causes: Mapping[int, Cause] | None = None,
                     default_cause: Cause = Cause("re-evaluated")) -> list[Change]:
    """Bring ``segments`` × ``contact_ids`` up to date at ``now``; the changes written.
    A contact that no longer exists leaves every segment."""
    ids = sorted(set(contact_ids))
    if not ids or not segments:
        return []
    await _lock_contacts(conn, ids)
    types = set().union(*(s.event_types for s in segments))
    events = await _events_of(conn, account_id, ids, types)
    contacts = await _contacts_of(conn, account_id, ids)
    segment_ids = [s.id for s in segments]
    current = await _members_of(conn, segment_ids, ids)
    changes: list[Change] = []
    due: list[dict[str, Any]] = []
    for contact_id in ids:
        cause = (causes or {}).get(contact_id, default_cause)
        contact = contacts.get(contact_id)
        for segment in segments:
            if contact is None:
                member, next_check = False, None
            else:
                result = evaluate(segment.conditions, events=events[contact_id],
                                  contact=contact, now=now, tz=segment.tz)
                member, next_check = result.member, result.next_check
            was = (segment.id, contact_id) in current
            if member != was:
                changes.append(Change(segment.id, contact_id, "entered" if member else "left",
                                      now, cause.reason[:200], cause.event_id))
            if next_check is not None:
                due.append({"segment_id": segment.id, "contact_id": contact_id,
                            "account_id": account_id, "due_at": next_check})
    written = await _write(conn, account_id, segment_ids, ids, changes, due)
    return [replace(c, id=i) for c, i in zip(changes, written, strict=True)]


async def _write(conn: AsyncConnection, account_id: int, segment_ids: Sequence[int],
                 contact_ids: Sequence[int], changes: Sequence[Change],
                 due: Sequence[dict[str, Any]]) -> list[int]:
    entered = [{"segment_id": c.segment_id, "contact_id": c.contact_id,
                "account_id": account_id, "entered_at": c.at}
               for c in changes if c.change == "entered"]
    left = [(c.segment_id, c.contact_id) for c in changes if c.change == "left"]
    if entered:
        await conn.execute(insert(SEGMENT_MEMBERS), entered)
    if left:
        await conn.execute(delete(SEGMENT_MEMBERS).where(or_(*[
            and_(SEGMENT_MEMBERS.c.segment_id == s, SEGMENT_MEMBERS.c.contact_id == c)
            for s, c in left])))
    written: list[int] = []
    if changes:
        # The member writes above took SQLite's write lock, as insert_ids needs.
        written = await insert_ids(conn, SEGMENT_CHANGES, [
            {"account_id": account_id, "segment_id": c.segment_id, "contact_id": c.contact_id,
             "change": c.change, "at": c.at, "reason": c.reason, "event_id": c.event_id}
            for c in changes])
    await _plan_due(conn, segment_ids, contact_ids, due)
    return written


async def _plan_due(conn: AsyncConnection, segment_ids: Sequence[int],
                    contact_ids: Sequence[int], due: Sequence[dict[str, Any]]) -> None:
    """Make the due rows of these pairs ``due``, writing only those that differ: most
    re-evaluations plan what was planned (a row the loop claimed meanwhile is its to
    re-plan: it re-evaluates every pair it claims)."""
    wanted = {(d["segment_id"], d["contact_id"]): as_utc(d["due_at"]) for d in due}
    stale: list[tuple[int, int]] = []
    for chunk in _chunks(contact_ids):
        for row in await conn.execute(
                select(SEGMENT_DUE.c.segment_id, SEGMENT_DUE.c.contact_id, SEGMENT_DUE.c.due_at)
                .where(SEGMENT_DUE.c.segment_id.in_(segment_ids)
                       & SEGMENT_DUE.c.contact_id.in_(chunk))):
            pair = (int(row.segment_id), int(row.contact_id))
            if wanted.get(pair) == as_utc(row.due_at):
                wanted.pop(pair)  # planned as it stands
            else:
                stale.append(pair)
    for start in range(0, len(stale), CHUNK):
        await conn.execute(delete(SEGMENT_DUE).where(or_(*[
            and_(SEGMENT_DUE.c.segment_id == s, SEGMENT_DUE.c.contact_id == c)
            for s, c in stale[start:start + CHUNK]])))
    rows = [d for d in due if (d["segment_id"], d["contact_id"]) in wanted]
    if rows:
        await conn.execute(insert(SEGMENT_DUE), rows)


async def apply(conn: AsyncConnection, account_id: int,
                events_with_contacts: Sequence[CommittedEvent], now: datetime) -> list[Change]:
    """Membership after a batch of one account's events, in the batch's transaction: every
    segment of the account, for the contacts the events name.
    Returns the changes (a workflow trigger reads them from ``segment_changes`` too)."""
    by_contact: dict[int, CommittedEvent] = {}
    for event in events_with_contacts:
        if event.contact_id is not None:
            by_contact[int(event.contact_id)] = event  # the latest event is the cause
    if not by_contact:
        return []
    # Every segment, not only those reading these types: a contact the batch created
    # (or changed through its params) may now match a "did not happen" or field condition.
    segments = await account_segments(conn, account_id=account_id)
    if not segments:
        return []
    causes = {cid: Cause(f"event {e.id} ({e.event_type_key})", e.id)
              for cid, e in by_contact.items()}
    return await reevaluate(conn, account_id=account_id, contact_ids=list(by_contact),
                            segments=segments, now=now, causes=causes)


async def contacts_changed(conn: AsyncConnection, *, account_id: int,
                           contact_ids: Iterable[int], now: datetime,
                           reason: str = "contact changed") -> list[Change]:
    """After contacts were created, changed or deleted (in that transaction): every
    segment of the account for them; a deleted contact leaves all it was in."""
    segments = await account_segments(conn, account_id=account_id)
    return await reevaluate(conn, account_id=account_id, contact_ids=contact_ids,
                            segments=segments, now=now, default_cause=Cause(reason))
