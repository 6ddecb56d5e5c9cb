"""Static group names as requests give them; pure, so the gateway reads them without
loading the storage layer."""

from __future__ import annotations

from typing import Final

from server.errors import InvalidArgument, Violation

__all__ = ["MAX_GROUPS", "MAX_GROUP_NAME", "parse_group_names"]

MAX_GROUP_NAME: Final = 255
MAX_GROUPS: Final = 100


def parse_group_names(value: object, *, name: str) -> list[str]:
    """Group names from a request: a list of names (or of ``{"name": ...}`` objects, as
    some clients echo groups back); null means none. Duplicates collapse."""
    if value is None:
        return []
    entries = value if isinstance(value, list) else [value]
    if len(entries) > MAX_GROUPS:
        raise InvalidArgument.from_violations([Violation(
            name, f"holds {len(entries)} groups; at most {MAX_GROUPS}")])
    out: list[str] = []
    problems: list[Violation] = []
    for index, entry in enumerate(entries):
        text = entry.get("name") if isinstance(entry, dict) else entry
        where = f"{name}[{index}]" if isinstance(value, list) else name
        if not isinstance(text, str) or not text.strip():
            problems.append(Violation(where, "must be a group name (a non-empty string)"))
        elif len(text.strip()) > MAX_GROUP_NAME:
            problems.append(Violation(where, f"is longer than {MAX_GROUP_NAME} characters"))
        elif text.strip() not in out:
            out.append(text.strip())
    if problems:
        raise InvalidArgument.from_violations(problems)
    return out
