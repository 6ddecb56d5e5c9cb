"""Segment definitions are checked on save, every problem named by its JSON path."""

from __future__ import annotations

from typing import Any

import pytest

from server.errors import InvalidArgument
from server.segments.definition import event_types_of, parse_definition, uses_contact

SEED = {"name": "viewers", "conditions": {"all": [{"event": {
    "eventTypeKey": "productViewed", "count": {"op": "gte", "value": 3}, "within": "PT24H",
    "params": [{"name": "brand", "op": "eq", "value": "Acme"}]}}]}}


def fields_of(doc: Any) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        parse_definition(doc)
    return {v.field: v.message for v in caught.value.violations}


def test_issue_example_is_accepted() -> None:
    """The issue's contract example parses; its event types and contact use are known."""
    definition = parse_definition(SEED)
    assert definition.time_zone == "UTC"
    assert event_types_of(definition.conditions) == {"productViewed"}
    assert not uses_contact(definition.conditions)


def test_every_condition_kind_is_accepted() -> None:
    """Groups nest; periods, count ops, param ops, first/last and contact fields all parse."""
    doc = {"name": "all kinds", "timeZone": "Europe/Kyiv", "conditions": {"any": [
        {"not": {"event": {"eventTypeKey": "purchase", "happened": False, "within": "today"}}},
        {"all": [
            {"event": {"eventTypeKey": "view", "count": {"op": "between", "value": [2, 5]},
                       "within": {"from": "2026-01-01", "to": "2026-01-31"}}},
            {"event": {"eventTypeKey": "view", "within": "thisWeek",
                       "params": [{"name": "price", "op": "gt", "value": 1500},
                                  {"name": "tags", "op": "oneOf", "value": ["a", 1]},
                                  {"name": "url", "op": "startsWith", "value": "https://"},
                                  {"name": "coupon", "op": "isSet"}]}},
            {"event": {"eventTypeKey": "login", "first": {"op": "within", "value": "P7D"},
                       "last": {"op": "before", "value": "2026-12-01T00:00:00Z"}}},
            {"contact": {"field": "town", "op": "eq", "value": "Kyiv"}},
            {"contact": {"fieldId": 10001, "op": "gte", "value": 18}}]}]}}
    definition = parse_definition(doc)
    assert event_types_of(definition.conditions) == {"purchase", "view", "login"}
    assert uses_contact(definition.conditions)


@pytest.mark.parametrize(("conditions", "field"), [
    ({"all": []}, "conditions.all"),
    ({"every": []}, "conditions.every"),
    ({"all": [{"event": {"count": {"op": "gte", "value": 1}}}]},
     "conditions.all[0].event.eventTypeKey"),
    ({"all": [{"event": {"eventTypeKey": "x", "count": {"op": "about", "value": 1}}}]},
     "conditions.all[0].event.count.op"),
    ({"all": [{"event": {"eventTypeKey": "x", "count": {"op": "gte", "value": -1}}}]},
     "conditions.all[0].event.count.value"),
    ({"all": [{"event": {"eventTypeKey": "x", "count": {"op": "between", "value": [5, 2]}}}]},
     "conditions.all[0].event.count.value"),
    ({"any": [{"not": {"event": {"eventTypeKey": "x", "within": "P1Y"}}}]},
     "conditions.any[0].not.event.within"),
    ({"all": [{"event": {"eventTypeKey": "x", "within": {"from": "2026-02-30", "to": "2026-03-01"}}}]},
     "conditions.all[0].event.within.from"),
    ({"all": [{"event": {"eventTypeKey": "x", "params": [{"name": "p", "op": "gt", "value": "7"}]}}]},
     "conditions.all[0].event.params[0].value"),
    ({"all": [{"event": {"eventTypeKey": "x", "params": [{"name": "p", "op": "like", "value": "7"}]}}]},
     "conditions.all[0].event.params[0].op"),
    ({"all": [{"event": {"eventTypeKey": "x", "params": [{"op": "eq", "value": "7"}]}}]},
     "conditions.all[0].event.params[0].name"),
    ({"all": [{"event": {"eventTypeKey": "x", "last": {"op": "within", "value": "soon"}}}]},
     "conditions.all[0].event.last.value"),
    ({"all": [{"event": {"eventTypeKey": "x", "first": {"op": "before", "value": "2026-01-01"}}}]},
     "conditions.all[0].event.first.value"),
    ({"all": [{"event": {"eventTypeKey": "x", "happened": False,
                         "count": {"op": "gte", "value": 1}}}]},
     "conditions.all[0].event.count"),
    ({"all": [{"event": {"eventTypeKey": "x", "colour": "red"}}]},
     "conditions.all[0].event.colour"),
    ({"all": [{"contact": {"field": "shoeSize", "op": "eq", "value": 1}}]},
     "conditions.all[0].contact.field"),
    ({"all": [{"contact": {"op": "eq", "value": 1}}]}, "conditions.all[0].contact"),
    ({"all": [{"contact": {"fieldId": "10001", "op": "eq", "value": 1}}]},
     "conditions.all[0].contact.fieldId"),
    ({"all": [{"event": {"eventTypeKey": "x"}, "contact": {}}]}, "conditions.all[0]"),
])
def test_bad_condition_is_named_by_path(conditions: Any, field: str) -> None:
    """Each bad part of a condition is refused with its JSON path."""
    assert field in fields_of({"name": "s", "conditions": conditions})


def test_every_problem_is_reported_at_once() -> None:
    """A definition with several faults names each of them, not only the first."""
    found = fields_of({"name": "", "timeZone": "Mars/Olympus", "conditions": {"all": [
        {"event": {"eventTypeKey": ""}}, {"contact": {"field": "town", "op": "zz"}}]}})
    assert {"name", "timeZone", "conditions.all[0].event.eventTypeKey",
            "conditions.all[1].contact.op"} <= set(found)


def test_top_level_members_and_limits() -> None:
    """Unknown top-level members, a missing conditions member, deep nesting are refused."""
    assert "colour" in fields_of({**SEED, "colour": 1})
    assert "conditions" in fields_of({"name": "x"})
    deep: dict[str, Any] = {"event": {"eventTypeKey": "x"}}
    for _ in range(10):
        deep = {"not": deep}
    assert "conditions" + ".not" * 8 in fields_of({"name": "x", "conditions": deep})
    many = {"all": [{"event": {"eventTypeKey": f"e{i}"}} for i in range(51)]}
    assert "conditions" in fields_of({"name": "x", "conditions": many})
