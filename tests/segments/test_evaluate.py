"""The meaning of segment conditions for one contact at one moment (pure evaluation)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from server.segments.definition import parse_definition
from server.segments.evaluate import ContactView, Evaluation, SegmentEvent, compare, evaluate

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # a Wednesday
KYIV = ZoneInfo("Europe/Kyiv")


def ev(key: str, at: datetime, n: int = 0, **params: Any) -> SegmentEvent:
    return SegmentEvent(id=n or int(at.timestamp()), type_key=key, at=at, params=params)


def run(cond: dict[str, Any], events: list[SegmentEvent], *, now: datetime = NOW,
        contact: ContactView | None = None, tz: Any = UTC) -> Evaluation:
    checked = parse_definition({"name": "t", "conditions": cond}).conditions
    return evaluate(checked, events=events, contact=contact or ContactView(), now=now, tz=tz)


def views(*, hours_ago: list[float]) -> list[SegmentEvent]:
    return [ev("productViewed", NOW - timedelta(hours=h), i + 1) for i, h in enumerate(hours_ago)]


def test_count_within_window_and_exact_expiry() -> None:
    """3 productViewed in 24 h: a member now, and the next check is when the oldest ages out."""
    cond = {"event": {"eventTypeKey": "productViewed", "count": {"op": "gte", "value": 3},
                      "within": "PT24H"}}
    events = views(hours_ago=[23, 5, 1])
    result = run(cond, events)
    assert result.member
    assert result.next_check == NOW + timedelta(hours=1)
    later = run(cond, events, now=result.next_check)
    assert not later.member
    assert run(cond, events, now=result.next_check - timedelta(microseconds=1)).member


@pytest.mark.parametrize(("op", "value", "expected"), [
    ("eq", 2, True), ("eq", 3, False), ("ne", 3, True), ("gt", 1, True), ("gt", 2, False),
    ("gte", 2, True), ("lt", 3, True), ("lt", 2, False), ("lte", 2, True),
    ("between", [2, 4], True), ("between", [3, 4], False), ("between", [0, 1], False)])
def test_count_ops(op: str, value: Any, expected: bool) -> None:
    """Each count op compares the number of matching events (here 2)."""
    cond = {"event": {"eventTypeKey": "productViewed", "count": {"op": op, "value": value}}}
    assert run(cond, views(hours_ago=[30, 2])).member is expected


def test_happened_and_not_happened() -> None:
    """Happened: at least one; happened false: none (a contact with no events qualifies)."""
    happened = {"event": {"eventTypeKey": "purchase"}}
    never = {"event": {"eventTypeKey": "purchase", "happened": False}}
    buy = [ev("purchase", NOW - timedelta(days=40))]
    assert run(happened, buy).member and not run(happened, []).member
    assert run(never, []).member and not run(never, buy).member


@pytest.mark.parametrize(("op", "value", "params", "expected"), [
    ("eq", "Acme", {"brand": "Acme"}, True),
    ("eq", "Acme", {"brand": "acme"}, False),
    ("eq", 1500, {"total": "1500.0"}, True),
    ("eq", 1500, {"total": 1500}, True),
    ("ne", "Acme", {"brand": "Other"}, True),
    ("ne", "Acme", {}, True),
    ("ne", "Acme", {"brand": "Acme"}, False),
    ("gt", 1500, {"total": "1600"}, True),
    ("gt", 1500, {"total": 900}, False),
    ("gt", 1500, {"total": "lots"}, False),
    ("gt", 9, {"total": "10"}, True),  # numbers as numbers: "10" > 9, not "10" < "9"
    ("gte", 1500, {"total": 1500}, True),
    ("lt", 10, {"total": 9.5}, True),
    ("lte", 10, {"total": "10"}, True),
    ("contains", "styler", {"name": "Hair styler"}, True),
    ("contains", "x", {"name": "Hair styler"}, False),
    ("contains", "sale", {"tags": ["winter", "sale"]}, True),
    ("startsWith", "https://", {"url": "https://shop"}, True),
    ("startsWith", "https://", {"url": "http://shop"}, False),
    ("oneOf", ["a", "b"], {"size": "b"}, True),
    ("oneOf", [42, 43], {"size": "43"}, True),
    ("oneOf", ["a", "b"], {"size": "c"}, False),
    ("isSet", True, {"coupon": "X1"}, True),
    ("isSet", True, {"coupon": ""}, False),
    ("isSet", True, {}, False),
    ("isSet", False, {}, True),
    ("eq", "Acme", {}, False),
])
def test_param_ops(op: str, value: Any, params: dict[str, Any], expected: bool) -> None:
    """Each param op, numbers compared as numbers, absent params per op."""
    cond = {"event": {"eventTypeKey": "purchase",
                      "params": [{"name": next(iter(params), "brand"), "op": op, "value": value}]}}
    assert run(cond, [ev("purchase", NOW - timedelta(hours=1), **params)]).member is expected


def test_param_conditions_filter_the_counted_events() -> None:
    """Only events whose params all hold are counted."""
    cond = {"event": {"eventTypeKey": "purchase", "count": {"op": "gte", "value": 2},
                      "params": [{"name": "totalCost", "op": "gt", "value": 1500}]}}
    big, small = [ev("purchase", NOW - timedelta(hours=h), h, totalCost=2000) for h in (1, 2)], \
        [ev("purchase", NOW - timedelta(hours=3), 3, totalCost=100)]
    assert run(cond, big).member
    assert not run(cond, big[:1] + small).member


def test_first_and_last_event_time() -> None:
    """first within P7D: a new buyer; last olderThan P30D: a lapsed one; before/after."""
    new_buyer = {"event": {"eventTypeKey": "purchase", "first": {"op": "within", "value": "P7D"}}}
    lapsed = {"event": {"eventTypeKey": "purchase", "last": {"op": "olderThan", "value": "P30D"}}}
    recent = [ev("purchase", NOW - timedelta(days=3), 1)]
    old = [ev("purchase", NOW - timedelta(days=40), 2)]
    result = run(new_buyer, recent)
    assert result.member and result.next_check == NOW + timedelta(days=4)
    assert not run(new_buyer, old + recent).member
    assert run(lapsed, old).member and not run(lapsed, old + recent).member
    waiting = run(lapsed, recent)
    assert not waiting.member and waiting.next_check == NOW + timedelta(days=27)
    before = {"event": {"eventTypeKey": "purchase",
                        "first": {"op": "before", "value": "2026-11-01T00:00:00Z"}}}
    after = {"event": {"eventTypeKey": "purchase",
                       "last": {"op": "after", "value": "2026-11-01T00:00:00+02:00"}}}
    assert run(before, old).member and not run(before, recent).member
    assert run(after, recent).member and not run(after, old).member
    assert not run(new_buyer, []).member and not run(lapsed, []).member


def test_today_in_the_time_zone() -> None:
    """'today' is the local day: 23:30 UTC is already tomorrow in Kyiv; the check is at
    the local midnight."""
    cond = {"event": {"eventTypeKey": "visit", "within": "today"}}
    late = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)  # 01:30 on Dec 2 in Kyiv
    now = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    assert run(cond, [ev("visit", late)], now=now, tz=KYIV).member
    in_utc = run(cond, [ev("visit", late)], now=now, tz=UTC)
    assert not in_utc.member
    result = run(cond, [ev("visit", late)], now=now, tz=KYIV)
    assert result.next_check == datetime(2026, 12, 2, 22, 0, tzinfo=UTC)  # Kyiv midnight
    assert not run(cond, [ev("visit", late)], now=result.next_check, tz=KYIV).member


def test_yesterday_this_week_this_month_and_dates() -> None:
    """Calendar periods and date ranges, in the definition's time zone, both ends included."""
    monday = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    sunday = datetime(2026, 11, 29, 21, 30, tzinfo=UTC)  # 23:30 on Sunday in Kyiv
    yesterday = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    week = {"event": {"eventTypeKey": "v", "within": "thisWeek"}}
    assert run(week, [ev("v", monday)]).member
    assert not run(week, [ev("v", sunday)], tz=KYIV).member
    assert run(week, [ev("v", sunday + timedelta(hours=1))], tz=KYIV).member
    assert run({"event": {"eventTypeKey": "v", "within": "yesterday"}}, [ev("v", yesterday)]).member
    assert not run({"event": {"eventTypeKey": "v", "within": "yesterday"}}, [ev("v", NOW)]).member
    month = run({"event": {"eventTypeKey": "v", "within": "thisMonth"}}, [ev("v", NOW)])
    assert month.member and month.next_check == datetime(2027, 1, 1, tzinfo=UTC)
    assert not run({"event": {"eventTypeKey": "v", "within": "thisMonth"}}, [ev("v", monday)]).member
    dates = {"event": {"eventTypeKey": "v", "within": {"from": "2026-11-30", "to": "2026-12-01"}}}
    assert run(dates, [ev("v", monday)]).member and run(dates, [ev("v", yesterday)]).member
    assert not run(dates, [ev("v", NOW)]).member
    upcoming = {"event": {"eventTypeKey": "v", "within": {"from": "2026-12-10", "to": "2026-12-11"}}}
    # An event before the range never enters it: its start is nothing to wait for.
    assert run(upcoming, [ev("v", NOW)]).next_check is None
    inside = run(dates, [ev("v", monday)], now=yesterday)
    assert inside.member and inside.next_check == datetime(2026, 12, 2, tzinfo=UTC)


def test_calendar_boundaries_are_next_checks_only_when_they_move_an_event() -> None:
    """A period's end is the next check when an event of this period would leave (or,
    for yesterday, today's would come in); a contact with none has no next check."""
    today = {"event": {"eventTypeKey": "v", "within": "today"}}
    assert run(today, [ev("v", NOW - timedelta(days=2))]).next_check is None
    assert run(today, [ev("v", NOW)]).next_check == datetime(2026, 12, 3, tzinfo=UTC)
    quiet = run({"not": {"event": {"eventTypeKey": "v", "within": "thisWeek"}}}, [])
    assert quiet.member and quiet.next_check is None
    yesterday = {"event": {"eventTypeKey": "v", "within": "yesterday"}}
    coming = run(yesterday, [ev("v", NOW - timedelta(hours=1))])
    assert not coming.member and coming.next_check == datetime(2026, 12, 3, tzinfo=UTC)
    assert run(yesterday, [ev("v", NOW - timedelta(hours=1))], now=coming.next_check).member


def test_contact_fields_standard_and_additional() -> None:
    """Contact-field leaves read standard fields by API name and additional ones by id."""
    contact = ContactView(fields={"town": "Kyiv", "email": "a@b.c"}, extra={10001: 21})
    assert run({"contact": {"field": "town", "op": "eq", "value": "Kyiv"}}, [], contact=contact).member
    assert run({"contact": {"field": "phone", "op": "isSet", "value": False}}, [],
               contact=contact).member
    assert run({"contact": {"fieldId": 10001, "op": "gte", "value": 18}}, [], contact=contact).member
    assert not run({"contact": {"fieldId": 10002, "op": "gte", "value": 18}}, [],
                   contact=contact).member


def test_all_any_not_nest() -> None:
    """all / any / not combine leaves, nested; every leaf still reports its boundaries."""
    events = views(hours_ago=[2])
    viewed = {"event": {"eventTypeKey": "productViewed", "within": "PT3H"}}
    bought = {"event": {"eventTypeKey": "purchase"}}
    cond = {"all": [viewed, {"not": bought}, {"any": [bought, viewed]}]}
    result = run(cond, events)
    assert result.member and result.next_check == NOW + timedelta(hours=1)
    assert not run(cond, events + [ev("purchase", NOW - timedelta(days=1))]).member


def test_future_stamped_events_count_from_their_time() -> None:
    """An event stamped after now counts from its time on, and that time is a check."""
    cond = {"event": {"eventTypeKey": "v"}}
    result = run(cond, [ev("v", NOW + timedelta(minutes=5))])
    assert not result.member and result.next_check == NOW + timedelta(minutes=5)


def test_compare_is_shared_by_params_and_fields() -> None:
    """One comparison rule: a bool condition value matches true/false text too."""
    assert compare("eq", True, present=True, actual="true")
    assert not compare("eq", True, present=True, actual=1)
