"""The rule for the members of a request document, whichever transport brought it: each
member must be one the receiver knows. An unknown member is refused by name, never
ignored, so nothing a caller sent is dropped silently."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from server.errors import InvalidArgument, Violation

__all__ = ["only_members"]


def only_members(doc: Any, allowed: Collection[str], *, where: str = "body") -> dict[str, Any]:
    """``doc`` as an object whose members are all ``allowed``; else a 400 naming each."""
    if not isinstance(doc, dict):
        raise InvalidArgument.from_violations([Violation(where, "must be a JSON object")])
    unknown = [name for name in doc if name not in allowed]
    if unknown:
        known = ", ".join(sorted(allowed))
        prefix = "" if where == "body" else f"{where}."
        raise InvalidArgument.from_violations([
            Violation(f"{prefix}{name}", f"is not a member this route knows; it takes {known}")
            for name in unknown])
    return doc
