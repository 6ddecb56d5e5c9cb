"""Param conditions of triggers and Condition blocks: shape checks and evaluation.

A condition is a leaf ``{"param", "operator", "value"}`` or a group ``{"all": [...]}`` /
``{"any": [...]}``; a list means all of them. Condition blocks also know the leaves
``{"eventOccurred": "<type key>"}``, ``{"contactExists": true|false}`` and
``{"inSegment": <segment id>}`` (the run's contact is a member now), whose facts the
caller supplies (they need storage).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from server.workflows.refs import as_text

OPERATORS = ("equals", "notEquals", "isSet", "isEmpty", "contains", "notContains",
             "startsWith", "endsWith", "oneOf", "greaterThan", "lessThan")
_NO_VALUE = {"isSet", "isEmpty"}
FACT_LEAVES = ("eventOccurred", "contactExists", "inSegment")
Facts = Callable[[str, Any], bool]  # (leaf kind, its argument) -> truth


def check_condition(cond: Any, *, path: str, facts_allowed: bool, out: list[tuple[str, str]]
                    ) -> None:
    """Append (field, reason) for every problem in ``cond``."""
    if isinstance(cond, list):
        for i, c in enumerate(cond):
            check_condition(c, path=f"{path}[{i}]", facts_allowed=facts_allowed, out=out)
        return
    if not isinstance(cond, dict):
        out.append((path, "a condition must be an object"))
        return
    for group in ("all", "any"):
        if group in cond:
            if not isinstance(cond[group], list) or not cond[group]:
                out.append((f"{path}.{group}", "must be a non-empty list of conditions"))
                return
            check_condition(cond[group], path=f"{path}.{group}", facts_allowed=facts_allowed,
                            out=out)
            return
    for leaf in FACT_LEAVES:
        if leaf in cond:
            if not facts_allowed:
                out.append((f"{path}.{leaf}", "is only allowed in a condition block"))
            elif leaf == "eventOccurred" and not (isinstance(cond[leaf], str) and cond[leaf]):
                out.append((f"{path}.{leaf}", "must name an event type key"))
            elif leaf == "contactExists" and not isinstance(cond[leaf], bool):
                out.append((f"{path}.{leaf}", "must be true or false"))
            elif leaf == "inSegment" and (not isinstance(cond[leaf], int)
                                          or isinstance(cond[leaf], bool) or cond[leaf] < 1):
                out.append((f"{path}.{leaf}", "must be the id of a segment of this account"))
            return
    if not isinstance(cond.get("param"), str) or not cond["param"]:
        out.append((f"{path}.param", "is required: the name of an event param"))
    op = cond.get("operator")
    if op not in OPERATORS:
        out.append((f"{path}.operator", f"{op!r} is not one of {', '.join(OPERATORS)}"))
    elif op == "oneOf" and not isinstance(cond.get("value"), list):
        out.append((f"{path}.value", "must be a list for oneOf"))
    elif op not in _NO_VALUE and "value" not in cond:
        out.append((f"{path}.value", f"is required for {op}"))


def _number(value: Any) -> float | None:
    try:
        return float(as_text(value))
    except ValueError:
        return None


def _leaf(cond: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    op = cond["operator"]
    present = cond["param"] in params
    actual = params.get(cond["param"])
    text = as_text(actual)
    if op == "isSet":
        return present and actual is not None and text != ""
    if op == "isEmpty":
        return not present or actual is None or text == "" or actual in ([], {})
    if op == "oneOf":
        return present and text in {as_text(v) for v in cond["value"]}
    want = as_text(cond.get("value"))
    if op == "equals":
        return present and (text == want or _numbers_equal(actual, cond.get("value")))
    if op == "notEquals":
        return not (present and (text == want or _numbers_equal(actual, cond.get("value"))))
    if op == "contains":
        return present and want in text
    if op == "notContains":
        return not (present and want in text)
    if op == "startsWith":
        return present and text.startswith(want)
    if op == "endsWith":
        return present and text.endswith(want)
    a, b = _number(actual), _number(cond.get("value"))
    if a is None or b is None:
        return False
    return a > b if op == "greaterThan" else a < b


def _numbers_equal(a: Any, b: Any) -> bool:
    x, y = _number(a), _number(b)
    return x is not None and y is not None and x == y


def holds(cond: Any, *, params: Mapping[str, Any], facts: Facts | None = None) -> bool:
    """Evaluate a (validated) condition against event params and storage facts."""
    if isinstance(cond, list):
        return all(holds(c, params=params, facts=facts) for c in cond)
    if "all" in cond:
        return all(holds(c, params=params, facts=facts) for c in cond["all"])
    if "any" in cond:
        return any(holds(c, params=params, facts=facts) for c in cond["any"])
    for leaf in FACT_LEAVES:
        if leaf in cond:
            return facts(leaf, cond[leaf]) if facts is not None else False
    return _leaf(cond, params)


def fact_leaves(cond: Any) -> list[tuple[str, Any]]:
    """The storage facts a condition needs, so callers can look them up before ``holds``."""
    if isinstance(cond, list):
        return [leaf for c in cond for leaf in fact_leaves(c)]
    for group in ("all", "any"):
        if group in cond:
            return fact_leaves(cond[group])
    return [(kind, cond[kind]) for kind in FACT_LEAVES if kind in cond]
