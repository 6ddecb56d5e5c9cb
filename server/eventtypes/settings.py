"""What an event type's settings are, how a change to them is checked, and the rule
"Validate parameters" applies to each event (step 3 of ``server.ingest.accept``).

An event of a type with required params is refused when one of them is missing: no param
of that name (names compare exactly), or one whose value is ``null``. Params the list does
not name are allowed; the list is the structure the type expects, each entry required or
not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from server.errors import InvalidArgument, Violation
from server.ingest.model import EventInput
from server.ingest.validation import MAX_PARAM_NAME, MAX_TYPE_KEY, _check_key

__all__ = ["MAX_RULES", "ParamRule", "RequiredParams", "SettingsPatch", "TypeSettings",
           "check_patch", "dump_rules", "load_rules"]

# Entries of one type's validateParams list.
MAX_RULES = 200


@dataclass(frozen=True, slots=True)
class ParamRule:
    name: str
    required: bool


@dataclass(frozen=True, slots=True)
class TypeSettings:
    segmentation: bool
    segmentation_since: datetime | None
    create_contacts: bool
    validate_params: tuple[ParamRule, ...]


@dataclass(frozen=True, slots=True)
class SettingsPatch:
    """A change: None leaves a setting as it is."""

    segmentation: bool | None = None
    create_contacts: bool | None = None
    validate_params: tuple[ParamRule, ...] | None = None


def dump_rules(rules: Sequence[ParamRule]) -> str | None:
    """The stored form of a validateParams list (NULL for an empty one)."""
    if not rules:
        return None
    return orjson.dumps([{"name": r.name, "required": r.required} for r in rules]).decode()


def load_rules(stored: str | None) -> tuple[ParamRule, ...]:
    if not stored:
        return ()
    return tuple(ParamRule(str(r["name"]), bool(r["required"])) for r in orjson.loads(stored))


def check_patch(key: str, patch: SettingsPatch) -> None:
    """Every violation of a change, named as the HTTP body's paths; InvalidArgument."""
    out: list[Violation] = []
    if not key.strip():
        out.append(Violation("eventTypeKey", "is required: name the event type"))
    else:
        _check_key("eventTypeKey", key, MAX_TYPE_KEY, out)
    rules = patch.validate_params or ()
    if len(rules) > MAX_RULES:
        out.append(Violation("validateParams", f"holds {len(rules)} entries; the limit is "
                             f"{MAX_RULES}"))
    seen: dict[str, int] = {}
    for index, rule in enumerate(rules):
        where = f"validateParams[{index}].name"
        if not rule.name:
            out.append(Violation(where, "is required: the name of a param of the event"))
        elif len(rule.name) > MAX_PARAM_NAME:
            out.append(Violation(where, f"is {len(rule.name)} characters long; the limit is "
                                 f"{MAX_PARAM_NAME}"))
        elif rule.name in seen:
            out.append(Violation(where, f"duplicates the name {rule.name!r} of "
                                 f"validateParams[{seen[rule.name]}]; names must be unique"))
        else:
            seen[rule.name] = index
    if out:
        raise InvalidArgument.from_violations(out)


class RequiredParams:
    """One type's "Validate parameters" as the ingest path applies it."""

    __slots__ = ("_expected", "required")

    def __init__(self, key: str, rules: Sequence[ParamRule]) -> None:
        self.required = tuple(r.name for r in rules if r.required)
        shown = orjson.dumps({"params": [{"name": r.name, "required": r.required}
                                         for r in rules]}).decode()
        self._expected = f"event type {key!r} expects {shown}"

    def violations(self, event: EventInput) -> list[Violation]:
        """One violation of ``params`` per required param the event misses."""
        present = {name for name, value in event.params if value is not None}
        return [Violation("params", f"has no {name!r}, a required param; {self._expected}")
                for name in self.required if name not in present]


def rules_of(key: str, stored: Any) -> RequiredParams | None:
    """The ingest rule of a type from its stored list; None when nothing is required."""
    rules = load_rules(stored)
    return RequiredParams(key, rules) if any(r.required for r in rules) else None
