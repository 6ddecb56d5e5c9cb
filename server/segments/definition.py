"""Segment definitions: the JSON document a caller saves, checked on save with every problem
named by its JSON path (``conditions.all[1].event.count.op``).

A definition is ``{"name", "conditions", "timeZone"?}``; a condition is a group
(``{"all": [...]}``, ``{"any": [...]}``, ``{"not": {...}}``, nestable), an event leaf
``{"event": {...}}`` or a contact-field leaf ``{"contact": {...}}``. ``docs/segments.md``
has the grammar; ``server.segments.evaluate`` gives it meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from server.errors import InvalidArgument, Violation
from server.members import only_members
from server.workflows.durations import parse_duration, zone

__all__ = ["CONTACT_FIELDS", "COUNT_OPS", "MAX_DEPTH", "MAX_LEAVES", "PARAM_OPS", "PERIODS",
           "TIME_OPS", "Definition", "event_types_of", "parse_definition", "uses_contact",
           "uses_zone"]

COUNT_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "between")
PARAM_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "contains", "startsWith", "oneOf", "isSet")
NUMERIC_OPS = ("gt", "gte", "lt", "lte")
TIME_OPS = ("within", "olderThan", "before", "after")
PERIODS = ("today", "yesterday", "thisWeek", "thisMonth")
# Standard contact fields by their API names, and the contacts column each reads.
CONTACT_FIELDS = {
    "firstName": "first_name", "lastName": "last_name", "email": "email", "phone": "phone",
    "externalCustomerId": "external_customer_id", "contactKey": "contact_key",
    "languageCode": "language_code", "timeZone": "time_zone", "region": "region",
    "town": "town", "address": "address", "postcode": "postcode", "confirmed": "confirmed",
    "status": "status",
}
MAX_DEPTH = 8
MAX_LEAVES = 50
MAX_NAME = 200
_EVENT_MEMBERS = ("eventTypeKey", "happened", "count", "within", "params", "first", "last")


@dataclass(frozen=True, slots=True)
class Definition:
    name: str
    conditions: dict[str, Any]
    time_zone: str
    # Saved without a timeZone of its own: it took the account's and follows its changes.
    follows_account: bool = False

    def document(self) -> dict[str, Any]:
        return {"name": self.name, "conditions": self.conditions, "timeZone": self.time_zone}


class _Checker:
    def __init__(self) -> None:
        self.problems: list[Violation] = []
        self.leaves = 0

    def say(self, path: str, message: str) -> None:
        self.problems.append(Violation(path, message))

    def members(self, doc: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any] | None:
        if not isinstance(doc, dict):
            self.say(path, "must be an object")
            return None
        for name in sorted(set(doc) - set(allowed)):
            self.say(f"{path}.{name}", f"is not a member here; known: {', '.join(allowed)}")
        return doc

    def condition(self, cond: Any, path: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.say(path, f"nests deeper than {MAX_DEPTH} groups")
            return
        if not isinstance(cond, dict) or len(cond) != 1:
            self.say(path, 'must be an object with one member: "all", "any", "not", '
                           '"event" or "contact"')
            return
        (kind, body), = cond.items()
        if kind in ("all", "any"):
            if not isinstance(body, list) or not body:
                self.say(f"{path}.{kind}", "must be a non-empty list of conditions")
                return
            for i, item in enumerate(body):
                self.condition(item, f"{path}.{kind}[{i}]", depth + 1)
        elif kind == "not":
            self.condition(body, f"{path}.not", depth + 1)
        elif kind == "event":
            self._leaf()
            self.event(body, f"{path}.event")
        elif kind == "contact":
            self._leaf()
            self.contact(body, f"{path}.contact")
        else:
            self.say(f"{path}.{kind}", 'is not a condition; use "all", "any", "not", '
                                       '"event" or "contact"')

    def _leaf(self) -> None:
        self.leaves += 1

    def event(self, body: Any, path: str) -> None:
        doc = self.members(body, path, _EVENT_MEMBERS)
        if doc is None:
            return
        key = doc.get("eventTypeKey")
        if not isinstance(key, str) or not key.strip() or len(key) > 100:
            self.say(f"{path}.eventTypeKey", "is required: the event type key (1-100 characters)")
        happened = doc.get("happened", True)
        if not isinstance(happened, bool):
            self.say(f"{path}.happened", "must be true or false")
        if "count" in doc:
            if happened is False:
                self.say(f"{path}.count", 'cannot be combined with "happened": false '
                                          '(use {"op": "eq", "value": 0})')
            self.count(doc["count"], f"{path}.count")
        if "within" in doc:
            self.period(doc["within"], f"{path}.within")
        params = doc.get("params", [])
        if not isinstance(params, list):
            self.say(f"{path}.params", "must be a list of param conditions")
        else:
            for i, param in enumerate(params):
                self.comparison(param, f"{path}.params[{i}]", name_member="name")
        for end in ("first", "last"):
            if end in doc:
                if happened is False:
                    self.say(f"{path}.{end}", 'cannot be combined with "happened": false')
                self.moment(doc[end], f"{path}.{end}")

    def count(self, body: Any, path: str) -> None:
        doc = self.members(body, path, ("op", "value"))
        if doc is None:
            return
        op = doc.get("op")
        if op not in COUNT_OPS:
            self.say(f"{path}.op", f"{op!r} is not one of {', '.join(COUNT_OPS)}")
            return
        value = doc.get("value")
        if op == "between":
            if not (isinstance(value, list) and len(value) == 2
                    and all(_count_number(v) for v in value) and value[0] <= value[1]):
                self.say(f"{path}.value", "must be [low, high]: two whole numbers >= 0, "
                                          "low <= high (both included)")
        elif not _count_number(value):
            self.say(f"{path}.value", "must be a whole number >= 0")

    def period(self, value: Any, path: str) -> None:
        if isinstance(value, str):
            if value in PERIODS:
                return
            try:
                if parse_duration(value).total_seconds() <= 0:
                    raise ValueError
            except ValueError:
                self.say(path, f"{value!r} is not a period: an ISO 8601 duration such as "
                               f"PT24H or P7D, or one of {', '.join(PERIODS)}")
            return
        doc = self.members(value, path, ("from", "to"))
        if doc is None:
            return
        days = []
        for end in ("from", "to"):
            try:
                days.append(date.fromisoformat(doc[end]) if isinstance(doc.get(end), str)
                            else None)
            except ValueError:
                days.append(None)
            if days[-1] is None:
                self.say(f"{path}.{end}", "is required: a date such as 2026-12-01 (included)")
        if days[0] is not None and days[1] is not None and days[0] > days[1]:
            self.say(f"{path}.to", "is before from")

    def moment(self, body: Any, path: str) -> None:
        doc = self.members(body, path, ("op", "value"))
        if doc is None:
            return
        op, value = doc.get("op"), doc.get("value")
        if op not in TIME_OPS:
            self.say(f"{path}.op", f"{op!r} is not one of {', '.join(TIME_OPS)}")
        elif op in ("within", "olderThan"):
            try:
                if not isinstance(value, str) or parse_duration(value).total_seconds() <= 0:
                    raise ValueError
            except ValueError:
                self.say(f"{path}.value", "must be an ISO 8601 duration such as P30D")
        elif _instant(value) is None:
            self.say(f"{path}.value", "must be a date-time with its offset, such as "
                                      "2026-12-01T00:00:00Z")

    def comparison(self, body: Any, path: str, *, name_member: str) -> None:
        allowed = (name_member, "op", "value") if name_member == "name" else \
            ("field", "fieldId", "op", "value")
        doc = self.members(body, path, allowed)
        if doc is None:
            return
        if name_member == "name":
            name = doc.get("name")
            if not isinstance(name, str) or not name:
                self.say(f"{path}.name", "is required: the param's name")
        op = doc.get("op")
        if op not in PARAM_OPS:
            self.say(f"{path}.op", f"{op!r} is not one of {', '.join(PARAM_OPS)}")
            return
        value = doc.get("value")
        if op == "isSet":
            if "value" in doc and not isinstance(value, bool):
                self.say(f"{path}.value", "must be true or false for isSet (default true)")
        elif "value" not in doc:
            self.say(f"{path}.value", f"is required for {op}")
        elif op == "oneOf":
            if not isinstance(value, list) or not value or not all(_scalar(v) for v in value):
                self.say(f"{path}.value", "must be a non-empty list of strings or numbers")
        elif op in NUMERIC_OPS:
            if not _number(value):
                self.say(f"{path}.value", f"must be a number for {op}")
        elif op in ("contains", "startsWith"):
            if not isinstance(value, str):
                self.say(f"{path}.value", f"must be text for {op}")
        elif not _scalar(value):
            self.say(f"{path}.value", "must be a string, number or true/false")

    def contact(self, body: Any, path: str) -> None:
        if not isinstance(body, dict):
            self.say(path, "must be an object")
            return
        has_field, has_id = "field" in body, "fieldId" in body
        if has_field == has_id:
            self.say(path, 'needs exactly one of "field" (a standard field) or "fieldId" '
                           "(an additional field's id)")
        elif has_field and body["field"] not in CONTACT_FIELDS:
            self.say(f"{path}.field", f"{body['field']!r} is not one of "
                                      f"{', '.join(CONTACT_FIELDS)}")
        elif has_id and not (isinstance(body["fieldId"], int)
                             and not isinstance(body["fieldId"], bool) and body["fieldId"] > 0):
            self.say(f"{path}.fieldId", "must be a field id such as 10001")
        self.comparison(body, path, name_member="field")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _count_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def parse_definition(doc: Any, *, default_zone: str = "UTC") -> Definition:
    """The checked definition, or InvalidArgument naming every bad path. A definition
    naming no ``timeZone`` takes ``default_zone`` (the account's, on save)."""
    top = only_members(doc, ("name", "conditions", "timeZone"))
    checker = _Checker()
    name = top.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        checker.say("name", f"is required: 1-{MAX_NAME} characters")
    tz = top.get("timeZone", default_zone)
    if not isinstance(tz, str):
        checker.say("timeZone", "must be an IANA time zone name such as Europe/Kyiv")
    else:
        try:
            zone(tz)
        except ValueError as error:
            checker.say("timeZone", str(error))
    if "conditions" not in top:
        checker.say("conditions", 'is required: {"all": [...]} or another condition')
    else:
        checker.condition(top["conditions"], "conditions", 1)
        if checker.leaves > MAX_LEAVES:
            checker.say("conditions", f"holds {checker.leaves} conditions; at most {MAX_LEAVES}")
    if checker.problems:
        raise InvalidArgument.from_violations(checker.problems)
    return Definition(name=str(name).strip(), conditions=top["conditions"], time_zone=str(tz),
                      follows_account="timeZone" not in top)


def _leaves(cond: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    (kind, body), = cond.items()
    if kind in ("all", "any"):
        return [leaf for item in body for leaf in _leaves(item)]
    if kind == "not":
        return _leaves(body)
    return [(kind, body)]


def event_types_of(conditions: dict[str, Any]) -> set[str]:
    """The event type keys a (checked) condition reads."""
    return {body["eventTypeKey"] for kind, body in _leaves(conditions) if kind == "event"}


def uses_zone(conditions: dict[str, Any]) -> bool:
    """Whether a (checked) condition reads the time zone: calendar periods and date ranges
    (sliding durations and instants with offsets do not)."""
    return any(kind == "event" and (body.get("within") in PERIODS
                                    or isinstance(body.get("within"), dict))
               for kind, body in _leaves(conditions))


def uses_contact(conditions: dict[str, Any]) -> bool:
    """Whether a (checked) condition reads contact fields (contact changes re-evaluate it)."""
    return any(kind == "contact" for kind, _ in _leaves(conditions))
