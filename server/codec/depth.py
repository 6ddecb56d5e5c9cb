"""The nesting rule of param values, checked once, when a body is decoded.

A JSON object level costs three protobuf message levels (Value, Struct, map entry) and
protobuf refuses messages nested over 100 deep, so 24 keeps every accepted event decodable.
"""

from __future__ import annotations

from collections.abc import Iterable

from server.errors import Violation
from server.ingest.model import JSON

MAX_DEPTH = 24
TOO_DEEP = f"is nested deeper than {MAX_DEPTH} levels"


def too_deep(where: str) -> Violation:
    """The violation of a param value (``where`` is e.g. ``params[2]``) past ``MAX_DEPTH``."""
    return Violation(f"{where}.value", TOO_DEEP)


def depth_exceeds(value: JSON, limit: int = MAX_DEPTH) -> bool:
    """True when objects/arrays nest more than ``limit`` levels (stops at the limit)."""
    if isinstance(value, dict):
        items: Iterable[JSON] = value.values()
    elif isinstance(value, list):
        items = value
    else:
        return False
    if limit <= 0:
        return True
    for item in items:
        if isinstance(item, (dict, list)) and depth_exceeds(item, limit - 1):
            return True
    return False


def few_containers(raw: bytes) -> bool:
    """True when JSON text ``raw`` cannot hold a value nested past ``MAX_DEPTH``.

    Every object or array of the parsed document starts at a ``{`` or ``[`` of the text
    (those inside strings only add to the count), and a param value nested past
    ``MAX_DEPTH`` needs more than ``MAX_DEPTH`` of them, so counting the two bytes, far
    cheaper than walking the values, is enough for nearly every real body.
    """
    return raw.count(b"{") + raw.count(b"[") <= MAX_DEPTH
