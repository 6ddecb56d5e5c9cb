"""What a checked segment condition means for one contact at one moment: pure, no storage.

``compile_conditions`` turns a checked condition into a tree of small nodes once per
definition version (the store caches it with the segment); ``Compiled.run`` answers whether the contact is a member at ``now`` and the next moment the
answer could change with no new event or contact change (an event ageing out of a
``PT24H`` window, a ``today`` period ending, a date range starting or ending). Both the
incremental path and the full recount call it, so they cannot disagree on meaning.

An event is inside a duration window ``D`` while ``now - D < at <= now``: it leaves at
exactly ``at + D``. Calendar periods (``today``, ``thisWeek``...) are read in the
definition's time zone and change at their local boundaries; a boundary is a next check
only when an event it moves exists (a contact with no event this week has nothing to
look at on Monday), so quiet contacts keep no due rows. A contact's events are
grouped and sorted once (``ContactEvents``) and shared by every segment evaluated for it,
with each (type, param filter) view computed once.
"""

from __future__ import annotations

import functools
import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from server.segments.definition import PERIODS
from server.workflows.durations import parse_duration as _parse_duration

# Definitions hold a handful of distinct durations, read for every evaluation.
parse_duration = functools.lru_cache(maxsize=1024)(_parse_duration)

__all__ = ["Compiled", "ContactEvents", "ContactView", "Evaluation", "SegmentEvent", "compare",
           "compile_conditions", "evaluate"]

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


@functools.lru_cache(maxsize=4096)
def _local_midnight(day: date, tz: Zone) -> datetime:
    return datetime.combine(day, time(0, 0)).replace(tzinfo=tz).astimezone(UTC)


@functools.lru_cache(maxsize=1024)
def _calendar(period: str, tz: Zone, now: datetime) -> tuple[datetime, datetime, datetime]:
    """(start, end, next change) of a calendar period around ``now`` in ``tz``: one batch
    asks it for every pair at the same ``now``."""
    today = now.astimezone(tz).date()
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
    return (_local_midnight(first, tz), _local_midnight(after, tz),
            _local_midnight(max(after, tomorrow), tz))


class ContactEvents:
    """One contact's counting events by type in time order; the times matching a (type,
    param filter) are computed once and shared by every leaf and segment asking."""

    __slots__ = ("_by_type", "_views")

    def __init__(self, events: Iterable[SegmentEvent]) -> None:
        by_type: dict[str, list[SegmentEvent]] = {}
        for event in sorted(events, key=lambda e: (e.at, e.id)):
            by_type.setdefault(event.type_key, []).append(event)
        self._by_type = by_type
        self._views: dict[tuple[str, str], list[datetime]] = {}

    def times(self, type_key: str, filter_key: str,
              keep: Callable[[Mapping[str, Any]], bool] | None) -> list[datetime]:
        found = self._views.get((type_key, filter_key))
        if found is None:
            events = self._by_type.get(type_key, ())
            found = [e.at for e in events if keep is None or keep(e.params)]
            self._views[(type_key, filter_key)] = found
        return found


_Node = Callable[[ContactEvents, ContactView | None, _Clock], bool]


def _count_test(spec: Mapping[str, Any] | None, happened: bool) -> Callable[[int], bool]:
    if spec is None:
        return (lambda n: n > 0) if happened else (lambda n: n == 0)
    op, value = spec["op"], spec["value"]
    if op == "between":
        low, high = int(value[0]), int(value[1])
        return lambda n: low <= n <= high
    v = int(value)
    return {"eq": lambda n: n == v, "ne": lambda n: n != v, "gt": lambda n: n > v,
            "gte": lambda n: n >= v, "lt": lambda n: n < v, "lte": lambda n: n <= v}[op]


def _param_filter(params: Sequence[Mapping[str, Any]]
                  ) -> Callable[[Mapping[str, Any]], bool] | None:
    if not params:
        return None
    tests = [(p["name"], p["op"], p.get("value")) for p in params]

    def keep(values: Mapping[str, Any]) -> bool:
        return all(compare(op, value, present=name in values, actual=values.get(name))
                   for name, op, value in tests)
    return keep


def _moment_test(spec: Mapping[str, Any]) -> Callable[[datetime | None, _Clock], bool]:
    op, value = spec["op"], spec["value"]
    if op in ("within", "olderThan"):
        span = parse_duration(value)
        inside = op == "within"

        def by_age(at: datetime | None, clock: _Clock) -> bool:
            if at is None:
                return False
            edge = at + span
            clock.wake(edge)
            return (clock.now < edge) is inside
        return by_age
    moment = datetime.fromisoformat(value)
    before = op == "before"

    def by_date(at: datetime | None, clock: _Clock) -> bool:
        return at is not None and (at < moment) is before
    return by_date


def _event_leaf(spec: Mapping[str, Any]) -> _Node:
    key = spec["eventTypeKey"]
    params = spec.get("params", [])
    keep = _param_filter(params)
    filter_key = orjson.dumps(params, option=orjson.OPT_SORT_KEYS).decode() if params else ""
    count = _count_test(spec.get("count"), bool(spec.get("happened", True)))
    ends = [(0 if name == "first" else -1, _moment_test(spec[name]))
            for name in ("first", "last") if name in spec]
    period = spec.get("within")
    sliding = parse_duration(period) if isinstance(period, str) and period not in PERIODS \
        else None
    days = (date.fromisoformat(period["from"]), date.fromisoformat(period["to"])
            + timedelta(days=1)) if isinstance(period, dict) else None

    def holds(events: ContactEvents, contact: ContactView | None, clock: _Clock) -> bool:
        times = events.times(key, filter_key, keep)
        now = clock.now
        # Events stamped after now count from their time on.
        upto = bisect_right(times, now)
        if upto < len(times):
            clock.wake(times[upto])
        lo, hi = 0, upto
        if sliding is not None:
            lo = bisect_right(times, now - sliding, 0, upto)
            if lo < hi:  # the earliest inside leaves first
                clock.wake(times[lo] + sliding)
        elif days is not None:
            start, end = _local_midnight(days[0], clock.tz), _local_midnight(days[1], clock.tz)
            lo, hi = bisect_left(times, start), min(bisect_left(times, end), upto)
            if lo < hi:  # they leave at the range's end (one entering is a future event)
                clock.wake(end)
        elif period is not None:
            start, end, change = _calendar(period, clock.tz, now)
            lo, hi = bisect_left(times, start), min(bisect_left(times, end), upto)
            # At the change, events from the period's start to now leave (yesterday's:
            # today's come in); earlier ones are in no later period: no change to wait for.
            if bisect_left(times, start, 0, upto) < upto:
                clock.wake(change)
        result = count(max(0, hi - lo))
        for pick, test in ends:
            at = (times[lo] if pick == 0 else times[hi - 1]) if hi > lo else None
            result = test(at, clock) and result
        return result
    return holds


def _contact_leaf(spec: Mapping[str, Any]) -> _Node:
    op, value = spec["op"], spec.get("value")
    extra = "field" not in spec
    key: Any = spec["fieldId"] if extra else spec["field"]

    def holds(events: ContactEvents, contact: ContactView | None, clock: _Clock) -> bool:
        if contact is None:
            return False
        source: Mapping[Any, Any] = contact.extra if extra else contact.fields
        return compare(op, value, present=key in source, actual=source.get(key))
    return holds


def _node(cond: Mapping[str, Any]) -> _Node:
    # Every branch is evaluated (no short cut) so each leaf reports its boundaries.
    (kind, body), = cond.items()
    if kind in ("all", "any"):
        children = [_node(c) for c in body]
        combine = all if kind == "all" else any

        def group(events: ContactEvents, contact: ContactView | None, clock: _Clock) -> bool:
            return combine([child(events, contact, clock) for child in children])
        return group
    if kind == "not":
        child = _node(body)

        def negation(events: ContactEvents, contact: ContactView | None, clock: _Clock
                     ) -> bool:
            return not child(events, contact, clock)
        return negation
    return _event_leaf(body) if kind == "event" else _contact_leaf(body)


def _leaves(cond: Mapping[str, Any]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    (kind, body), = cond.items()
    if kind in ("all", "any"):
        for item in body:
            yield from _leaves(item)
    elif kind == "not":
        yield from _leaves(body)
    else:
        yield kind, body


@dataclass(frozen=True, slots=True)
class Compiled:
    """A checked condition ready to run, and what it reads: ``event_types`` (their
    events), ``param_types`` (those whose params a leaf compares), whether it reads
    standard or additional contact fields."""

    root: _Node
    event_types: frozenset[str]
    param_types: frozenset[str]
    uses_fields: bool
    uses_extra: bool
    extra_fields: frozenset[int] = frozenset()

    def run(self, events: ContactEvents, contact: ContactView | None, *, now: datetime,
            tz: Zone) -> Evaluation:
        clock = _Clock(now, tz)
        member = self.root(events, contact, clock)
        return Evaluation(member=member, next_check=clock.next)


def compile_conditions(conditions: Mapping[str, Any]) -> Compiled:
    leaves = list(_leaves(conditions))
    return Compiled(
        root=_node(conditions),
        event_types=frozenset(b["eventTypeKey"] for k, b in leaves if k == "event"),
        param_types=frozenset(b["eventTypeKey"] for k, b in leaves
                              if k == "event" and b.get("params")),
        uses_fields=any(k == "contact" and "field" in b for k, b in leaves),
        uses_extra=any(k == "contact" and "fieldId" in b for k, b in leaves),
        extra_fields=frozenset(int(b["fieldId"]) for k, b in leaves
                               if k == "contact" and "fieldId" in b))


def evaluate(conditions: Mapping[str, Any], *, events: Sequence[SegmentEvent],
             contact: ContactView | None, now: datetime, tz: Zone) -> Evaluation:
    """Membership of one contact at ``now``; ``events``: its counting events, any order."""
    return compile_conditions(conditions).run(ContactEvents(events), contact, now=now, tz=tz)
