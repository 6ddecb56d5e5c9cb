"""A workflow definition: its JSON document checked on save and read as plain data.

Every problem becomes a ``Violation`` whose field names the place (``blocks[2].next``) and
whose message names the block (``block "wait": ...``), so the caller can fix it at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from server.errors import InvalidArgument, Violation
from server.workflows import blockspec, segments
from server.workflows.conditions import check_condition
from server.workflows.durations import parse_duration

MAX_BLOCKS = 200
MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class Unique:
    mode: str  # "every" | "once" | "oncePer"
    period: timedelta | None
    by: str  # "contact" | "key"


@dataclass(frozen=True, slots=True)
class Definition:
    """A valid definition; ``doc`` is the document as saved, ``blocks`` indexed by id."""

    doc: dict[str, Any]
    name: str
    active: bool
    event_type_key: str
    conditions: list[Any]
    unique: Unique
    skip_if_running: bool
    stop_event_types: tuple[str, ...]
    start: str
    blocks: dict[str, dict[str, Any]]


def _unique(trigger: dict[str, Any], out: list[tuple[str, str]]) -> Unique:
    raw = trigger.get("unique", "every")
    by = trigger.get("uniqueBy", "contact")
    if by not in ("contact", "key"):
        out.append(("trigger.uniqueBy", "must be \"contact\" or \"key\""))
    if raw in ("every", "once"):
        return Unique(mode=str(raw), period=None, by=str(by))
    if isinstance(raw, dict) and isinstance(raw.get("oncePer"), str):
        try:
            period = parse_duration(raw["oncePer"])
            if period <= timedelta(0):
                raise ValueError("the period must be longer than zero")
            return Unique(mode="oncePer", period=period, by=str(by))
        except ValueError as exc:
            out.append(("trigger.unique.oncePer", str(exc)))
            return Unique(mode="every", period=None, by=str(by))
    out.append(("trigger.unique", 'must be "every", "once" or {"oncePer": "P1D"}'))
    return Unique(mode="every", period=None, by="contact")


def _trigger(doc: dict[str, Any], out: list[tuple[str, str]]) -> tuple[str, list[Any], Unique, bool]:
    trigger = doc.get("trigger")
    if not isinstance(trigger, dict):
        out.append(("trigger", "is required: an object with eventTypeKey"))
        return "", [], Unique("every", None, "contact"), False
    key = segments.trigger_of(trigger, out)
    if key is None:
        key = trigger.get("eventTypeKey")
        if not isinstance(key, str) or not key.strip():
            out.append(("trigger.eventTypeKey",
                        "is required: the event type that starts the workflow"))
            key = ""
    conditions = trigger.get("conditions", [])
    if not isinstance(conditions, list):
        out.append(("trigger.conditions", "must be a list of conditions"))
        conditions = []
    check_condition(conditions, path="trigger.conditions", facts_allowed=False, out=out)
    skip = trigger.get("skipIfRunning", False)
    if not isinstance(skip, bool):
        out.append(("trigger.skipIfRunning", "must be true or false"))
        skip = False
    return str(key).strip(), conditions, _unique(trigger, out), skip


def _stop(doc: dict[str, Any], out: list[tuple[str, str]]) -> tuple[str, ...]:
    stop = doc.get("stop", {}) or {}
    keys = stop.get("eventTypeKeys", []) if isinstance(stop, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
        out.append(("stop.eventTypeKeys", "must be a list of event type keys"))
        return ()
    return tuple(keys)


def _blocks(doc: dict[str, Any], out: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    raw = doc.get("blocks")
    if not isinstance(raw, list) or not raw:
        out.append(("blocks", "is required: a non-empty list of blocks"))
        return {}
    if len(raw) > MAX_BLOCKS:
        out.append(("blocks", f"holds {len(raw)} blocks; the limit is {MAX_BLOCKS}"))
    blocks: dict[str, dict[str, Any]] = {}
    for i, block in enumerate(raw):
        where = f"blocks[{i}]"
        if not isinstance(block, dict):
            out.append((where, "a block must be an object"))
            continue
        bid = block.get("id")
        if not isinstance(bid, str) or not bid:
            out.append((f"{where}.id", "is required: a name other blocks point to"))
            continue
        if bid in blocks:
            out.append((f"{where}.id", f'block "{bid}": the id is used by another block'))
            continue
        blocks[bid] = block
        blockspec.check_block(block, where=where, out=out)
    return blocks


def _graph(start: Any, blocks: dict[str, dict[str, Any]], index: dict[str, int],
           out: list[tuple[str, str]]) -> None:
    if not isinstance(start, str) or start not in blocks:
        out.append(("start", f"names {start!r}, which is not a block id"))
        return
    for bid, block in blocks.items():
        for field, target in blockspec.edges(block):
            if target not in blocks:
                out.append((f"blocks[{index[bid]}].{field}",
                            f'block "{bid}": {field} points to "{target}", which is not a block'))
    seen, todo = {start}, [start]
    while todo:
        for _field, target in blockspec.edges(blocks[todo.pop()]):
            if target in blocks and target not in seen:
                seen.add(target)
                todo.append(target)
    for bid in blocks:
        if bid not in seen:
            out.append((f"blocks[{index[bid]}]", (f'block "{bid}" is unreachable from the '
                                                  f'start block "{start}"')))
    loop = blockspec.timerless_cycle(blocks)
    if loop:
        out.append((f"blocks[{index[loop[0]]}]", (f'block "{loop[0]}": the blocks '
                                                  f'{" -> ".join(loop)} form a loop without a timer')))


def parse_definition(doc: Any) -> Definition:
    """Check ``doc``; raises InvalidArgument listing every problem found."""
    if not isinstance(doc, dict):
        raise InvalidArgument.from_violations([Violation("definition", "must be a JSON object")])
    out: list[tuple[str, str]] = []
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        out.append(("name", "is required: give the workflow a name"))
        name = ""
    elif len(name) > MAX_NAME:
        out.append(("name", f"is {len(name)} characters long; the limit is {MAX_NAME}"))
    active = doc.get("active", False)
    if not isinstance(active, bool):
        out.append(("active", "must be true or false"))
        active = False
    key, conditions, unique, skip = _trigger(doc, out)
    stops = _stop(doc, out)
    blocks = _blocks(doc, out)
    if blocks:  # only from a list of blocks
        index = {str(b.get("id")): i for i, b in enumerate(doc["blocks"]) if isinstance(b, dict)}
        _graph(doc.get("start"), blocks, index, out)
    if out:
        raise InvalidArgument.from_violations([Violation(f, m) for f, m in out])
    return Definition(doc=doc, name=name.strip(), active=active, event_type_key=key,
                      conditions=conditions, unique=unique, skip_if_running=skip,
                      stop_event_types=stops, start=str(doc["start"]), blocks=blocks)
