"""What eSputnik routes accept beyond their fields: known query parameters only, known
top-level body members only, and ``startindex`` / ``maxrows`` paging. A parameter or
member the route does not know is a 400 naming it, never ignored: an ignored filter would
answer a silently wider result, an ignored member would drop what the caller sent."""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

from starlette.requests import Request

from server.errors import InvalidArgument, Violation
from server.gateway.http import INT32_MAX, query_number
from server.members import only_members

__all__ = ["MAX_ROWS", "only_members", "only_query", "page_of", "query_bool"]

MAX_ROWS: Final = 500


def only_query(request: Request, allowed: Collection[str]) -> None:
    """Refuse query parameters the route does not know (names compare exactly)."""
    unknown = sorted({name for name in request.query_params if name not in allowed})
    if unknown:
        known = ", ".join(sorted(allowed)) or "none"
        raise InvalidArgument.from_violations([
            Violation(name, f"is not a parameter of {request.url.path}; it takes {known}")
            for name in unknown])


def page_of(request: Request) -> tuple[int, int]:
    """``(offset, limit)`` from ``startindex`` (1-based, default 1) and ``maxrows``
    (1..500, default 500), as eSputnik pages its lists."""
    start = query_number(request, "startindex", most=INT32_MAX, default=1)
    rows = query_number(request, "maxrows", most=INT32_MAX, default=MAX_ROWS)
    problems = []
    if start < 1:
        problems.append(Violation("startindex", "counts from 1"))
    if not 1 <= rows <= MAX_ROWS:
        problems.append(Violation("maxrows", f"must be between 1 and {MAX_ROWS}"))
    if problems:
        raise InvalidArgument.from_violations(problems)
    return start - 1, rows


def query_bool(request: Request, name: str, default: bool = False) -> bool:
    """A true/false query parameter (``true``, ``false``, ``1``, ``0``; any case)."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise InvalidArgument.from_violations([Violation(name, f"{raw!r} is not true or false")])
