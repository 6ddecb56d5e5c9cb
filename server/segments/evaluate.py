"""What a checked segment condition means for one contact at one moment: pure, no storage.

``evaluate`` answers whether the contact is a member at ``now`` and the next moment the
answer could change with no new event or contact change (an event ageing out of a
``PT24H`` window, a ``today`` period ending, a date range starting or ending). Both the
incremental path and the full recount call it, so they cannot disagree on meaning.

An event is inside a duration window ``D`` while ``now - D < at <= now``: it leaves at
exactly ``at + D``. Calendar periods (``today``, ``thisWeek``...) are read in the
definition's time zone and change at their local boundaries.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from server.segments.definition import PERIODS
from server.workflows.durations import parse_duration as _parse_duration

# Definitions hold a handful of distinct durations, read for every evaluation.
parse_duration = functools.lru_cache(maxsize=1024)(_parse_duration)

__all__ = ["ContactView", "Evaluation", "SegmentEvent", "compare", "evaluate"]

Zone = ZoneInfo | timezone


@dataclass(frozen=True, slots=True)
class SegmentEvent:
    id: int
    type_key: str
    at: datetime
    params: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ContactView:
    """A contact's standard fields by API name and its additional fields by id."""

    fields: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[int, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Evaluation:
    member: bool
    # The next moment (UTC) the answer may change without new data; None when never.
    next_check: datetime | None


class _Clock:
    def __init__(self, now: datetime, tz: Zone) -> None:
        self.now = now
        self.tz = tz
        self.next: datetime | None = None

    def wake(self, moment: datetime) -> None:
        if moment > self.now and (self.next is None or moment < self.next):
            self.next = moment

    def local_midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(0, 0)).replace(tzinfo=self.tz).astimezone(UTC)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    return orjson.dumps(value).decode()


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _equals(actual: Any, want: Any) -> bool:
    if isinstance(want, bool):
        return actual is want or (isinstance(actual, str) and actual.lower() == _text(want))
    if isinstance(want, int | float):
        number = _as_number(actual)
        return number is not None and number == float(want)
    if isinstance(actual, list):
        return any(_equals(item, want) for item in actual)
    return actual is not None and _text(actual) == want


def compare(op: str, value: Any, *, present: bool, actual: Any) -> bool:
    """One param or field comparison: numbers compare as numbers (a numeric string counts),
    ``ne`` holds when the value is absent, and a list value matches when one item does."""
    if op == "isSet":
        is_set = present and actual is not None and actual != "" and actual != []
        return is_set is (True if value is None else bool(value))
    if op == "ne":
        return not (present and _equals(actual, value))
    if not present or actual is None:
        return False
    if op == "eq":
        return _equals(actual, value)
    if op == "oneOf":
        return any(_equals(actual, item) for item in value)
    if op == "contains":
        if isinstance(actual, list):
            return any(isinstance(item, str) and value in item for item in actual)
        return value in _text(actual)
    if op == "startsWith":
        return _text(actual).startswith(value)
    number = _as_number(actual)
    if number is None:
        return False
    want = float(value)
    return {"gt": number > want, "gte": number >= want, "lt": number < want,
            "lte": number <= want}[op]


def _count_holds(spec: Mapping[str, Any] | None, count: int, happened: bool) -> bool:
    if spec is None:
        return count > 0 if happened else count == 0
    op, value = spec["op"], spec["value"]
    if op == "between":
        return bool(value[0] <= count <= value[1])
    value = int(value)
    return {"eq": count == value, "ne": count != value, "gt": count > value,
            "gte": count >= value, "lt": count < value, "lte": count <= value}[op]


def _window(period: Any, clock: _Clock) -> tuple[datetime | None, datetime | None,
                                                  timedelta | None]:
    """(start, end, sliding duration): a duration keeps events with start < at (it slides
    with now); a calendar period or date range keeps start <= at < end (fixed until its
    next boundary, which wakes the clock)."""
    if period is None:
        return None, None, None
    if isinstance(period, dict):
        start = clock.local_midnight(date.fromisoformat(period["from"]))
        end = clock.local_midnight(date.fromisoformat(period["to"]) + timedelta(days=1))
        clock.wake(start)
        clock.wake(end)
        return start, end, None
    if period not in PERIODS:
        duration = parse_duration(period)
        return clock.now - duration, None, duration
    today = clock.now.astimezone(clock.tz).date()
    tomorrow = today + timedelta(days=1)
    if period == "today":
        first, after = today, tomorrow
    elif period == "yesterday":
        first, after = today - timedelta(days=1), today
    elif period == "thisWeek":
        first = today - timedelta(days=today.weekday())
        after = first + timedelta(days=7)
    else:
        first = today.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
    # The period moves on at its end (yesterday's: at the coming midnight).
    clock.wake(clock.local_midnight(max(after, tomorrow)))
    return clock.local_midnight(first), clock.local_midnight(after), None


def _event_leaf(spec: Mapping[str, Any], by_type: Mapping[str, Sequence[SegmentEvent]],
                clock: _Clock) -> bool:
    now = clock.now
    events = by_type.get(spec["eventTypeKey"], ())
    params = spec.get("params", [])
    if params:
        events = [e for e in events if all(
            compare(p["op"], p.get("value"), present=p["name"] in e.params,
                    actual=e.params.get(p["name"])) for p in params)]
    # Events stamped after now count from their time on.
    times = [e.at for e in events]
    upto = bisect.bisect_right(times, now)
    if upto < len(times):
        clock.wake(times[upto])
    start, end, sliding = _window(spec.get("within"), clock)
    if start is None:
        chosen = times[:upto]
    elif sliding is not None:
        chosen = times[bisect.bisect_right(times, start):upto]
        for at in chosen:
            clock.wake(at + sliding)
    else:
        assert end is not None
        chosen = times[bisect.bisect_left(times, start):min(bisect.bisect_left(times, end), upto)]
    happened = bool(spec.get("happened", True))
    result = _count_holds(spec.get("count"), len(chosen), happened)
    for end_name, pick in (("first", 0), ("last", -1)):
        if end_name in spec:
            result = _moment_holds(spec[end_name], chosen[pick] if chosen else None,
                                   clock) and result
    return result


def _moment_holds(spec: Mapping[str, Any], at: datetime | None, clock: _Clock) -> bool:
    if at is None:
        return False
    op, value = spec["op"], spec["value"]
    if op in ("within", "olderThan"):
        edge = at + parse_duration(value)
        clock.wake(edge)
        return (clock.now < edge) if op == "within" else (clock.now >= edge)
    moment = datetime.fromisoformat(value)
    return at < moment if op == "before" else at >= moment


def _contact_leaf(spec: Mapping[str, Any], contact: ContactView | None) -> bool:
    if contact is None:
        return False
    if "field" in spec:
        source: Mapping[Any, Any] = contact.fields
        key: Any = spec["field"]
    else:
        source, key = contact.extra, spec["fieldId"]
    return compare(spec["op"], spec.get("value"), present=key in source, actual=source.get(key))


def _holds(cond: Mapping[str, Any], by_type: Mapping[str, Sequence[SegmentEvent]],
           contact: ContactView | None, clock: _Clock) -> bool:
    # Every branch is evaluated (no short cut) so each leaf reports its boundaries.
    (kind, body), = cond.items()
    if kind in ("all", "any"):
        results = [_holds(c, by_type, contact, clock) for c in body]
        return all(results) if kind == "all" else any(results)
    if kind == "not":
        return not _holds(body, by_type, contact, clock)
    if kind == "event":
        return _event_leaf(body, by_type, clock)
    return _contact_leaf(body, contact)


def evaluate(conditions: Mapping[str, Any], *, events: Sequence[SegmentEvent],
             contact: ContactView | None, now: datetime, tz: Zone) -> Evaluation:
    """Membership of one contact at ``now``; ``events``: its counting events, any order."""
    by_type: dict[str, list[SegmentEvent]] = {}
    for event in sorted(events, key=lambda e: (e.at, e.id)):
        by_type.setdefault(event.type_key, []).append(event)
    clock = _Clock(now, tz)
    member = _holds(conditions, by_type, contact, clock)
    return Evaluation(member=member, next_check=clock.next)
