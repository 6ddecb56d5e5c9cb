"""Workflows on segment membership (issue 13): the trigger "contact entered / left a
segment" and the condition leaf ``{"inSegment": <segment id>}`` of the ``condition`` block.

A segment trigger ``{"segment": {"id": 12, "change": "entered"}}`` is stored under the
key ``segment/12/entered`` where event triggers keep their event type key ("/" is never
in an event type key), so the batch path's lookup of active workflows by key finds both.
Membership changes start runs in ``server.workflows.segment_runs``. Segment ids are
checked against the account's segments when a workflow is saved.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from server.errors import InvalidArgument, Violation
from server.segments.tables import SEGMENT_MEMBERS, SEGMENTS

__all__ = ["CHANGES", "check_segments", "in_segment", "refuse_segment_trigger",
           "segment_trigger_key", "trigger_of"]

CHANGES = ("entered", "left")


def segment_trigger_key(segment_id: int, change: str) -> str:
    return f"segment/{segment_id}/{change}"


def trigger_of(trigger: dict[str, Any], out: list[tuple[str, str]]) -> str | None:
    """The stored key of a ``{"segment": {...}}`` trigger (problems appended to ``out``),
    or None when the trigger is not a segment trigger."""
    if "segment" not in trigger:
        return None
    if "eventTypeKey" in trigger:
        out.append(("trigger.segment", "give eventTypeKey or segment, not both"))
    seg = trigger["segment"]
    if not isinstance(seg, dict):
        out.append(("trigger.segment", 'must be an object: {"id": 12, "change": "entered"}'))
        return ""
    for name in sorted(set(seg) - {"id", "change"}):
        out.append((f"trigger.segment.{name}", "is not a member here; known: id, change"))
    sid = seg.get("id")
    if not isinstance(sid, int) or isinstance(sid, bool) or sid < 1:
        out.append(("trigger.segment.id", "is required: the id of a segment of this account"))
        sid = 0
    change = seg.get("change", "entered")
    if change not in CHANGES:
        out.append(("trigger.segment.change", f"{change!r} is not one of entered, left"))
        change = "entered"
    return segment_trigger_key(sid, str(change))


def refuse_segment_trigger(trigger_key: str) -> None:
    """The simulator replays events; a segment trigger starts on membership changes, which
    a simulation does not make: refused, naming the field, rather than simulating nothing."""
    if trigger_key.startswith("segment/"):
        raise InvalidArgument.from_violations([Violation(
            "trigger.segment", "the simulator starts runs from the events it is given; a "
            "segment trigger starts them when membership changes, which it does not "
            "simulate: try the workflow with an eventTypeKey trigger (its inSegment "
            "conditions read the stored membership)")])


def _condition_refs(cond: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(cond, list):
        for i, c in enumerate(cond):
            yield from _condition_refs(c, f"{path}[{i}]")
    elif isinstance(cond, dict):
        for group in ("all", "any"):
            if isinstance(cond.get(group), list):
                yield from _condition_refs(cond[group], f"{path}.{group}")
                return
        if "inSegment" in cond:
            yield f"{path}.inSegment", cond["inSegment"]


def _segment_refs(doc: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(field, segment id) for every place a definition names a segment."""
    trigger = doc.get("trigger")
    if isinstance(trigger, dict) and isinstance(trigger.get("segment"), dict):
        yield "trigger.segment.id", trigger["segment"].get("id")
    for i, block in enumerate(doc.get("blocks") or []):
        if isinstance(block, dict) and block.get("type") == "condition":
            yield from _condition_refs(block.get("conditions", []), f"blocks[{i}].conditions")


async def check_segments(conn: AsyncConnection, *, account_id: int, doc: dict[str, Any]
                         ) -> None:
    """Refuses, on save, a definition naming a segment this account does not have (another
    account's is "no segment N in this account", as a missing one)."""
    refs = [(field, sid) for field, sid in _segment_refs(doc) if isinstance(sid, int)]
    if not refs:
        return
    found = {int(r.id) for r in await conn.execute(select(SEGMENTS.c.id).where(
        (SEGMENTS.c.account_id == account_id)
        & SEGMENTS.c.id.in_(sorted({sid for _f, sid in refs}))))}
    missing = [Violation(field, f"no segment with id {sid} in this account")
               for field, sid in refs if sid not in found]
    if missing:
        raise InvalidArgument.from_violations(missing)


async def in_segment(conn: AsyncConnection, *, account_id: int, segment_id: int,
                     contact_id: int | None) -> bool:
    """Whether the contact is a member now (a run without a contact is in no segment)."""
    if contact_id is None:
        return False
    row = (await conn.execute(select(SEGMENT_MEMBERS.c.contact_id).where(
        (SEGMENT_MEMBERS.c.segment_id == segment_id)
        & (SEGMENT_MEMBERS.c.contact_id == contact_id)
        & (SEGMENT_MEMBERS.c.account_id == account_id)))).first()
    return row is not None
