"""Membership kept current: re-evaluate given contacts against given segments from what is
stored, write who entered and left (with when and why), and plan each pair's next check.

Three callers, one function (``reevaluate``): the worker after an event batch commits its
contact links (``apply``), contact changes, and the due-time loop and the recount in
``server.segments.loop``. Each contact is re-evaluated from its stored events, so
incremental and full results cannot drift apart; a per-contact lock orders concurrent
evaluations of one contact (the last one to commit read everything the others wrote).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

import orjson
from sqlalchemy import (
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from server.contacts.tables import CONTACTS, FIELD_VALUES
from server.db.dialect import backend_of, insert_ids, serialise
from server.db.models import Event, as_utc, table_of
from server.segments.definition import CONTACT_FIELDS
from server.segments.evaluate import ContactEvents, ContactView, SegmentEvent
from server.segments.store import Segment, account_segments
from server.segments.switch import counting_types
from server.segments.tables import SEGMENT_CHANGES, SEGMENT_DUE, SEGMENT_MEMBERS

__all__ = ["Cause", "Change", "CommittedEvent", "apply", "contacts_changed", "reevaluate"]

_events = table_of(Event)
# The first key of the per-contact lock (server.db.dialect.serialise); the second is the id.
CONTACT_LOCK = 0x5E6
# Contacts per query when loading their events, fields and membership.
CHUNK = 500
_NO_PARAMS: Mapping[str, Any] = {}
# Per-pair writes as one statement run for many rows (compiled once, unlike an OR of pairs).
_LEAVE = delete(SEGMENT_MEMBERS).where((SEGMENT_MEMBERS.c.segment_id == bindparam("s"))
                                       & (SEGMENT_MEMBERS.c.contact_id == bindparam("c")))
_UNPLAN = delete(SEGMENT_DUE).where((SEGMENT_DUE.c.segment_id == bindparam("s"))
                                    & (SEGMENT_DUE.c.contact_id == bindparam("c")))
_REPLAN = update(SEGMENT_DUE).where((SEGMENT_DUE.c.segment_id == bindparam("s"))
                                    & (SEGMENT_DUE.c.contact_id == bindparam("c"))
                                    ).values(due_at=bindparam("d"))


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


# What one evaluation reads: per counting type key, its id and since when it counts.
Counting = Mapping[str, tuple[int, datetime]]


async def _events_of(conn: AsyncConnection, account_id: int,
                     wanted: Mapping[int, Sequence[Segment]], counting: Counting
                     ) -> dict[int, list[SegmentEvent]]:
    """The contacts' counting events of the types their segments read, one query per 500
    contacts (a contact may get events of a type only another contact's segments read:
    no segment of its own looks at them); bodies only of types a param leaf reads."""
    out: dict[int, list[SegmentEvent]] = {c: [] for c in wanted}
    every = {s.id: s for segments in wanted.values() for s in segments}.values()
    types = counting.keys() & set().union(*(s.compiled.event_types for s in every))
    if not types:
        return out
    params = types & set().union(*(s.compiled.param_types for s in every))
    key_of = {counting[k][0]: k for k in types}
    param_ids = sorted(counting[k][0] for k in params)
    body = case((_events.c.event_type_id.in_(param_ids), _events.c.body), else_=None) \
        if param_ids else literal(None)
    # Received since its type's switch (types switched on together share one test).
    by_since: dict[datetime, list[int]] = defaultdict(list)
    for key in types:
        by_since[counting[key][1]].append(counting[key][0])
    counts = or_(*[_events.c.event_type_id.in_(sorted(ids)) & (_events.c.received_at >= since)
                   for since, ids in sorted(by_since.items())])
    at, read_at = _moment_column(conn)
    for chunk in _chunks(sorted(wanted)):
        rows = await conn.execute(
            select(_events.c.id, _events.c.contact_id, _events.c.event_type_id,
                   body.label("body"), at.label("at"))
            .where((_events.c.account_id == account_id) & _events.c.contact_id.in_(chunk)
                   & counts))
        for row in rows:
            values: Mapping[str, Any] = _NO_PARAMS
            if row.body is not None:
                values = {p["name"]: p.get("value")
                          for p in orjson.loads(row.body).get("params", ())}
            out[int(row.contact_id)].append(SegmentEvent(
                id=int(row.id), type_key=key_of[int(row.event_type_id)], at=read_at(row.at),
                params=values))
    return out


def _moment_column(conn: AsyncConnection) -> tuple[Any, Callable[[Any], datetime]]:
    """An event's time (occurred, else received), as the database reads it fastest."""
    return backend_of(conn).read_times(func.coalesce(_events.c.occurred_at,
                                                     _events.c.received_at))


@dataclass(frozen=True, slots=True)
class _Stamp:
    created_at: datetime
    updated_at: datetime


async def _contacts_of(conn: AsyncConnection, account_id: int, contact_ids: Sequence[int],
                       *, extra: bool) -> tuple[dict[int, ContactView], dict[int, _Stamp]]:
    """The contacts that exist, their standard fields (and additional ones when ``extra``),
    and when each was created and last changed."""
    columns = [CONTACTS.c[column].label(name) for name, column in CONTACT_FIELDS.items()]
    fields: dict[int, dict[str, Any]] = {}
    stamps: dict[int, _Stamp] = {}
    values_of: dict[int, dict[int, Any]] = {}
    for chunk in _chunks(contact_ids):
        for row in await conn.execute(select(
                CONTACTS.c.id, CONTACTS.c.created_at, CONTACTS.c.updated_at, *columns).where(
                (CONTACTS.c.account_id == account_id) & CONTACTS.c.id.in_(chunk))):
            values = row._mapping
            fields[int(row.id)] = {name: values[name] for name in CONTACT_FIELDS
                                   if values[name] is not None}
            stamps[int(row.id)] = _Stamp(as_utc(row.created_at), as_utc(row.updated_at))
        if not extra:
            continue
        for row in await conn.execute(select(FIELD_VALUES.c.contact_id, FIELD_VALUES.c.field_id,
                                             FIELD_VALUES.c.value).where(
                (FIELD_VALUES.c.account_id == account_id)
                & FIELD_VALUES.c.contact_id.in_(chunk))):
            try:
                value = orjson.loads(row.value)
            except orjson.JSONDecodeError:
                value = row.value
            values_of.setdefault(int(row.contact_id), {})[int(row.field_id)] = value
    views = {cid: ContactView(fields=fields[cid], extra=values_of.get(cid, {}))
             for cid in fields}
    return views, stamps


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
    return await _reevaluate(conn, account_id=account_id, wanted=dict.fromkeys(ids, segments),
                             now=now, causes=causes or {}, default_cause=default_cause)


async def _reevaluate(conn: AsyncConnection, *, account_id: int,
                      wanted: Mapping[int, Sequence[Segment]], now: datetime,
                      causes: Mapping[int, Cause], default_cause: Cause,
                      loaded: tuple[dict[int, ContactView], dict[int, _Stamp]] | None = None
                      ) -> list[Change]:
    """Each contact of ``wanted`` against its own segments: every read is one query per
    batch of contacts, whatever the number of segments."""
    ids = sorted(wanted)
    await _lock_contacts(conn, ids)
    every = {s.id: s for segments in wanted.values() for s in segments}
    types = set().union(*(s.compiled.event_types for s in every.values()))
    counting = await counting_types(conn, account_id=account_id, type_keys=types)
    events = await _events_of(conn, account_id, wanted, counting)
    if loaded is None:
        loaded = await _contacts_of(conn, account_id, ids,
                                    extra=any(s.compiled.uses_extra for s in every.values()))
    contacts = loaded[0]
    current = await _members_of(conn, sorted(every), ids)
    zones = {s.id: s.tz for s in every.values()}
    changes: list[Change] = []
    due: list[dict[str, Any]] = []
    for contact_id in ids:
        cause = causes.get(contact_id, default_cause)
        contact = contacts.get(contact_id)
        view = ContactEvents(events[contact_id])
        for segment in wanted[contact_id]:
            if contact is None:
                member, next_check = False, None
            else:
                result = segment.compiled.run(view, contact, now=now, tz=zones[segment.id])
                member, next_check = result.member, result.next_check
            was = (segment.id, contact_id) in current
            if member != was:
                changes.append(Change(segment.id, contact_id, "entered" if member else "left",
                                      now, cause.reason[:200], cause.event_id))
            if next_check is not None:
                due.append({"segment_id": segment.id, "contact_id": contact_id,
                            "account_id": account_id, "due_at": next_check})
    evaluated = {(s.id, c) for c, segments in wanted.items() for s in segments}
    written = await _write(conn, account_id, sorted(every), ids, evaluated, changes, due)
    return [replace(c, id=i) for c, i in zip(changes, written, strict=True)]


async def _write(conn: AsyncConnection, account_id: int, segment_ids: Sequence[int],
                 contact_ids: Sequence[int], evaluated: set[tuple[int, int]],
                 changes: Sequence[Change], due: Sequence[dict[str, Any]]) -> list[int]:
    entered = [{"segment_id": c.segment_id, "contact_id": c.contact_id,
                "account_id": account_id, "entered_at": c.at}
               for c in changes if c.change == "entered"]
    left = [(c.segment_id, c.contact_id) for c in changes if c.change == "left"]
    if entered:
        await conn.execute(insert(SEGMENT_MEMBERS), entered)
    if left:
        await conn.execute(_LEAVE, [{"s": s, "c": c} for s, c in left])
    written: list[int] = []
    if changes:
        # The member writes above took SQLite's write lock, as insert_ids needs.
        written = await insert_ids(conn, SEGMENT_CHANGES, [
            {"account_id": account_id, "segment_id": c.segment_id, "contact_id": c.contact_id,
             "change": c.change, "at": c.at, "reason": c.reason, "event_id": c.event_id}
            for c in changes])
    await _plan_due(conn, segment_ids, contact_ids, evaluated, due)
    return written


async def _plan_due(conn: AsyncConnection, segment_ids: Sequence[int],
                    contact_ids: Sequence[int], evaluated: set[tuple[int, int]],
                    due: Sequence[dict[str, Any]]) -> None:
    """Make the due rows of the ``evaluated`` pairs ``due``, writing only those that
    differ: most re-evaluations plan what was planned (a row the loop claimed meanwhile is
    its to re-plan: it re-evaluates every pair it claims). Rows of pairs not evaluated
    (in the same segments and contacts) stay as they are."""
    wanted = {(d["segment_id"], d["contact_id"]): as_utc(d["due_at"]) for d in due}
    moved: list[dict[str, Any]] = []
    ended: list[dict[str, Any]] = []
    for chunk in _chunks(contact_ids):
        for row in await conn.execute(
                select(SEGMENT_DUE.c.segment_id, SEGMENT_DUE.c.contact_id, SEGMENT_DUE.c.due_at)
                .where(SEGMENT_DUE.c.segment_id.in_(segment_ids)
                       & SEGMENT_DUE.c.contact_id.in_(chunk))):
            pair = (int(row.segment_id), int(row.contact_id))
            if pair not in evaluated:
                continue
            at = wanted.pop(pair, None)  # the row exists: changed in place or gone
            if at is None:
                ended.append({"s": pair[0], "c": pair[1]})
            elif at != as_utc(row.due_at):
                moved.append({"s": pair[0], "c": pair[1], "d": at})
    if ended:
        await conn.execute(_UNPLAN, ended)
    if moved:
        await conn.execute(_REPLAN, moved)
    rows = [d for d in due if (d["segment_id"], d["contact_id"]) in wanted]
    if rows:
        await conn.execute(insert(SEGMENT_DUE), rows)


async def apply(conn: AsyncConnection, account_id: int,
                events_with_contacts: Sequence[CommittedEvent], now: datetime, *,
                changed_since: datetime | None = None) -> list[Change]:
    """Membership after a batch of one account's events, in the batch's transaction.

    A contact is re-evaluated against the segments reading the types of its events in the
    batch (an event of another type cannot change their answer; time is the due loop's);
    a contact created at or after ``changed_since`` against every segment (it may match a
    "did not happen" or field condition), one changed since then also against those reading
    contact fields. Without ``changed_since`` every contact counts as created. Returns the
    changes (a workflow trigger reads them from ``segment_changes`` too)."""
    by_contact: dict[int, CommittedEvent] = {}
    types_of: dict[int, set[str]] = defaultdict(set)
    for event in events_with_contacts:
        if event.contact_id is not None:
            by_contact[int(event.contact_id)] = event  # the latest event is the cause
            types_of[int(event.contact_id)].add(event.event_type_key)
    if not by_contact:
        return []
    segments = await account_segments(conn, account_id=account_id)
    if not segments:
        return []
    ids = sorted(by_contact)
    loaded = await _contacts_of(conn, account_id, ids,
                                extra=any(s.compiled.uses_extra for s in segments))
    stamps = loaded[1]
    wanted: dict[int, list[Segment]] = {}
    for contact_id in ids:
        stamp = stamps.get(contact_id)
        if stamp is None or changed_since is None or stamp.created_at >= changed_since:
            chosen = list(segments)  # new (or gone: it leaves every segment)
        else:
            changed = stamp.updated_at >= changed_since
            chosen = [s for s in segments if not s.event_types.isdisjoint(types_of[contact_id])
                      or (changed and s.compiled.uses_fields | s.compiled.uses_extra)]
        if chosen:
            wanted[contact_id] = chosen
    if not wanted:
        return []
    causes = {cid: Cause(f"event {e.id} ({e.event_type_key})", e.id)
              for cid, e in by_contact.items()}
    return await _reevaluate(conn, account_id=account_id, wanted=wanted, now=now,
                             causes=causes, default_cause=Cause("re-evaluated"), loaded=loaded)


async def contacts_changed(conn: AsyncConnection, *, account_id: int,
                           contact_ids: Iterable[int], now: datetime,
                           reason: str = "contact changed") -> list[Change]:
    """After contacts were created, changed or deleted (in that transaction): every
    segment of the account for them; a deleted contact leaves all it was in."""
    segments = await account_segments(conn, account_id=account_id)
    return await reevaluate(conn, account_id=account_id, contact_ids=contact_ids,
                            segments=segments, now=now, default_cause=Cause(reason))
