"""The nesting rules of JSON, checked once, when a body or value is decoded.

Two figures, both counted in objects and arrays:

- ``MAX_DEPTH`` (24): an event's param value. A JSON object level costs three protobuf
  message levels (Value, Struct, map entry) and protobuf refuses messages nested over 100
  deep, so 24 keeps every accepted event decodable.
- ``MAX_BODY_DEPTH`` (32): a whole JSON document a caller sends (an HTTP body, or JSON
  text in a gRPC field such as a workflow definition), the document itself being level 1.
  Bodies that travel as a ``google.protobuf.Struct`` (contacts, fields, messages) decode
  on the server up to 33 object levels; an event body whose param values keep to
  ``MAX_DEPTH`` is at most 29 deep (``{"events": [{"params": [{"value": ...}]}]}``).
"""

from __future__ import annotations

from collections.abc import Iterable

from server.errors import Violation
from server.ingest.model import JSON

MAX_DEPTH = 24
TOO_DEEP = f"is nested deeper than {MAX_DEPTH} levels"
MAX_BODY_DEPTH = 32
BODY_TOO_DEEP = f"is nested deeper than {MAX_BODY_DEPTH} levels of objects and arrays"
# A path in a violation is cut here: the deepest paths are long by nature.
MAX_PATH_TEXT = 120


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


def few_containers(raw: bytes | str, limit: int = MAX_DEPTH) -> bool:
    """True when JSON text ``raw`` cannot hold a value nested past ``limit``.

    Every object or array of the parsed document starts at a ``{`` or ``[`` of the text
    (those inside strings only add to the count), and a value nested past ``limit``
    needs more than ``limit`` of them, so counting the two characters, far cheaper than
    walking the values, is enough for nearly every real body.
    """
    if isinstance(raw, str):
        return raw.count("{") + raw.count("[") <= limit
    return raw.count(b"{") + raw.count(b"[") <= limit


def _too_deep_at(value: JSON, limit: int, path: list[str]) -> list[str] | None:
    """The path (its parts) of the first container nested past ``limit``, or None."""
    if isinstance(value, dict):
        items: Iterable[tuple[str, JSON]] = ((f".{k}", v) for k, v in value.items())
    elif isinstance(value, list):
        items = ((f"[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    if limit <= 0:
        return path
    for part, item in items:
        if isinstance(item, (dict, list)):
            path.append(part)
            if _too_deep_at(item, limit - 1, path) is not None:
                return path
            path.pop()
    return None


def document_too_deep(doc: JSON, *, name: str, source: bytes | str | None = None
                      ) -> Violation | None:
    """The violation of a document nested past ``MAX_BODY_DEPTH``, naming the path of
    the first value past it (``name`` is the document's own: ``body``, ``definition``);
    None when it keeps to the rule. ``source``, the text it was parsed from, lets the
    walk be skipped (``few_containers``)."""
    if source is not None and few_containers(source, MAX_BODY_DEPTH):
        return None
    parts = _too_deep_at(doc, MAX_BODY_DEPTH, [])
    if parts is None:
        return None
    where = "".join(parts)
    # A member of an HTTP body is named by its own path (``contacts[0].fields``).
    where = where[1:] if name == "body" and where.startswith(".") else name + where
    if len(where) > MAX_PATH_TEXT:
        where = where[:MAX_PATH_TEXT] + "…"
    return Violation(where, BODY_TOO_DEEP)
