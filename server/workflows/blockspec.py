"""The block types a definition may use, the fields each takes, and the graph edges.

Checked on save; the engine and the simulator then read blocks as plain dicts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from server.workflows.conditions import check_condition
from server.workflows.durations import parse_duration, parse_time_of_day, parse_weekday, zone
from server.workflows.refs import check_refs

BLOCK_TYPES = ("email", "transactional_email", "create_contact", "update_contact", "timer",
               "condition", "split", "webhook", "launch_event", "end")
# Fields whose text may hold ${} references.
_REF_FIELDS = {
    "email": ("to",), "transactional_email": ("to",),
    "create_contact": ("email", "phone", "json"), "update_contact": ("email", "phone", "json"),
    "webhook": ("url",), "launch_event": ("keyValue", "params"),
}


def edges(block: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, target id) for every edge leaving ``block``."""
    kind = block.get("type")
    if kind == "condition":
        for field in ("onTrue", "onFalse"):
            if isinstance(block.get(field), str):
                yield field, block[field]
    elif kind == "split":
        for i, branch in enumerate(block.get("branches") or []):
            if isinstance(branch, dict) and isinstance(branch.get("next"), str):
                yield f"branches[{i}].next", branch["next"]
    elif kind != "end" and isinstance(block.get("next"), str):
        yield "next", block["next"]


def timerless_cycle(blocks: dict[str, dict[str, Any]]) -> list[str] | None:
    """A loop that never waits (it would spin forever), as a list of ids, or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(bid: str) -> list[str] | None:
        state[bid] = 1
        path.append(bid)
        for _f, target in edges(blocks[bid]):
            if target not in blocks or blocks[target].get("type") == "timer":
                continue
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[bid] = 2
        path.pop()
        return None

    for bid, block in blocks.items():
        if bid not in state and block.get("type") != "timer" and (found := visit(bid)):
            return found
    return None


def _walk_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _walk_strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _walk_strings(v)


def _check_timer(block: dict[str, Any], say: Any) -> None:
    if ("duration" in block) == ("until" in block):
        say("duration", 'give either "duration" (such as "PT1M") or "until"')
        return
    if "duration" in block:
        try:
            parse_duration(block["duration"])
        except ValueError as exc:
            say("duration", str(exc))
    else:
        until = block["until"]
        if not isinstance(until, dict) or not ({"time", "param"} & until.keys()):
            say("until", 'must be {"weekday", "time"}, {"time"} or {"param"} (a date param)')
            return
        try:
            if "time" in until:
                parse_time_of_day(until["time"])
            if "weekday" in until:
                parse_weekday(until["weekday"])
            if "param" in until and not (isinstance(until["param"], str) and until["param"]):
                raise ValueError("param must name an event param holding a date")
        except ValueError as exc:
            say("until", str(exc))
    tz = block.get("timeZone")
    if tz is not None and tz != "contact":
        try:
            zone(tz if isinstance(tz, str) else "")
        except ValueError as exc:
            say("timeZone", f'{exc}, or "contact"')


def _check_fields(kind: str, block: dict[str, Any], say: Any) -> None:
    if kind in ("email", "transactional_email"):
        tid = block.get("templateId")
        if not isinstance(tid, int) or isinstance(tid, bool) or tid <= 0:
            say("templateId", "is required: the id of a stored message template")
        if "jsonParam" in block and not isinstance(block["jsonParam"], (str, type(None))):
            say("jsonParam", "must name an event param")
    elif kind in ("create_contact", "update_contact"):
        if not any(block.get(f) for f in ("email", "phone", "json")):
            say("email", "give at least one of email, phone or json (such as \"${email}\")")
    elif kind == "timer":
        _check_timer(block, say)
    elif kind == "condition":
        out: list[tuple[str, str]] = []
        if "conditions" not in block:
            say("conditions", "is required: the checks deciding onTrue or onFalse")
        check_condition(block.get("conditions", []), path="conditions", facts_allowed=True, out=out)
        for field, reason in out:
            say(field, reason)
        for field in ("onTrue", "onFalse"):
            if not isinstance(block.get(field), str):
                say(field, "is required: the id of the next block")
    elif kind == "split":
        _check_split(block, say)
    elif kind == "webhook":
        url = block.get("url")
        if not isinstance(url, str) or (not url.startswith("${")
                                        and urlsplit(url).scheme not in ("http", "https")):
            say("url", "is required: an http(s) URL")
    elif kind == "launch_event":
        if not isinstance(block.get("eventTypeKey"), str) or not block["eventTypeKey"]:
            say("eventTypeKey", "is required: the type of the event to generate")
        if not isinstance(block.get("params", []), (list, dict)):
            say("params", "must be a list of {name, value} or an object")


def _check_split(block: dict[str, Any], say: Any) -> None:
    branches = block.get("branches")
    if not isinstance(branches, list) or len(branches) < 2:
        say("branches", 'is required: at least two {"percent", "next"}')
        return
    total = 0
    for i, branch in enumerate(branches):
        pct = branch.get("percent") if isinstance(branch, dict) else None
        if not isinstance(pct, int) or isinstance(pct, bool) or pct < 0:
            say(f"branches[{i}].percent", "must be a whole number from 0 to 100")
            continue
        total += pct
        if not isinstance(branch.get("next"), str):
            say(f"branches[{i}].next", "is required: the id of the next block")
    if total != 100:
        say("branches", f"percentages add up to {total}, not 100")


def check_block(block: dict[str, Any], *, where: str, out: list[tuple[str, str]]) -> None:
    bid = block["id"]
    kind = block.get("type")

    def say(field: str, reason: str) -> None:
        out.append((f"{where}.{field}", f'block "{bid}": {field} {reason}'
                    if not reason.startswith(field) else f'block "{bid}": {reason}'))

    if kind not in BLOCK_TYPES:
        out.append((f"{where}.type", (f'block "{bid}": unknown type {kind!r}; use one of '
                                      f'{", ".join(BLOCK_TYPES)}')))
        return
    _check_fields(kind, block, say)
    if "next" in block and not isinstance(block["next"], str):
        say("next", "must be the id of the next block")
    for field in _REF_FIELDS.get(kind, ()):
        for text in _walk_strings(block.get(field)):
            problem = check_refs(text)
            if problem:
                say(field, f"has a bad reference: {problem}")
                break
