"""A segment definition told in words for its page: a tree of sentences ("did
``abandoned_cart`` at least 2 times in the last 7 days"), built from the saved JSON. Only
presentation: what a definition means is ``server.segments.evaluate``'s."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_COUNT = {"eq": "exactly", "ne": "not exactly", "gt": "more than", "gte": "at least",
          "lt": "fewer than", "lte": "at most"}
_COMPARE = {"eq": "is", "ne": "is not", "gt": "is greater than", "gte": "is at least",
            "lt": "is less than", "lte": "is at most", "contains": "contains",
            "startsWith": "starts with", "oneOf": "is one of"}
_PERIODS = {"today": "today", "yesterday": "yesterday", "thisWeek": "this week (from Monday)",
            "thisMonth": "this month"}
_DURATION = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
_UNITS = ("week", "day", "hour", "minute", "second")


@dataclass
class Line:
    """One sentence, made of (kind, text) pieces: "text" plain, "code" a name or value;
    a group's members are its ``children``."""

    pieces: list[tuple[str, str]]
    children: list[Line] = field(default_factory=list)


def duration_words(value: str) -> str:
    """``P7D`` → "7 days", ``PT1H30M`` → "1 hour 30 minutes"; the text itself if unknown."""
    found = _DURATION.match(value or "")
    if not found or not any(found.groups()):
        return value
    parts = []
    for amount, unit in zip(found.groups(), _UNITS, strict=True):
        if amount and float(amount):
            n = amount.rstrip("0").rstrip(".") if "." in amount else amount
            parts.append(f"{n} {unit}{'' if n == '1' else 's'}")
    return " ".join(parts) or value


def _value(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False)


def _period(value: Any) -> str:
    if isinstance(value, str):
        return _PERIODS.get(value) or f"in the last {duration_words(value)}"
    if isinstance(value, dict):
        return f"from {value.get('from')} to {value.get('to')} (whole days)"
    return _value(value)


def _comparison(subject: list[tuple[str, str]], c: dict[str, Any]) -> list[tuple[str, str]]:
    op = c.get("op")
    if op == "isSet":
        return [*subject, ("text", " is set" if c.get("value", True) else " is not set")]
    value = c.get("value")
    shown = ", ".join(_value(v) for v in value) if op == "oneOf" and isinstance(value, list) \
        else _value(value)
    return [*subject, ("text", f" {_COMPARE.get(str(op), str(op))} "), ("code", shown)]


def _moment(end: str, m: dict[str, Any]) -> str:
    op, value = m.get("op"), m.get("value")
    what = f"the {end} such event"
    if op == "within":
        return f"{what} in the last {duration_words(str(value))}"
    if op == "olderThan":
        return f"{what} more than {duration_words(str(value))} ago"
    return f"{what} {op} {value}"


def _event(e: dict[str, Any]) -> Line:
    key = str(e.get("eventTypeKey", ""))
    if e.get("happened", True) is False:
        pieces: list[tuple[str, str]] = [("text", "no "), ("code", key), ("text", " event")]
    else:
        pieces = [("text", "did "), ("code", key)]
        count = e.get("count")
        if isinstance(count, dict):
            op, value = count.get("op"), count.get("value")
            if op == "between" and isinstance(value, list) and len(value) == 2:
                pieces.append(("text", f" between {value[0]} and {value[1]} times"))
            else:
                times = "time" if value == 1 else "times"
                pieces.append(("text", f" {_COUNT.get(str(op), str(op))} {value} {times}"))
    if "within" in e:
        pieces.append(("text", " " + _period(e["within"])))
    line = Line(pieces)
    for p in e.get("params") or []:
        if isinstance(p, dict):
            line.children.append(Line(_comparison(
                [("text", "with param "), ("code", str(p.get("name")))], p)))
    for end in ("first", "last"):
        if isinstance(e.get(end), dict):
            line.children.append(Line([("text", _moment(end, e[end]))]))
    return line


def describe(cond: Any) -> Line:
    """The condition tree as sentences (unknown shapes shown as their JSON)."""
    if isinstance(cond, dict) and len(cond) == 1:
        (kind, body), = cond.items()
        if kind in ("all", "any") and isinstance(body, list):
            head = "All of these:" if kind == "all" else "Any of these:"
            return Line([("text", head)], [describe(c) for c in body])
        if kind == "not":
            return Line([("text", "None of this:")], [describe(body)])
        if kind == "event" and isinstance(body, dict):
            return _event(body)
        if kind == "contact" and isinstance(body, dict):
            name = str(body["field"]) if "field" in body else f"additional field {body.get('fieldId')}"
            return Line(_comparison([("text", "contact's "), ("code", name)], body))
    return Line([("code", _value(cond))])
