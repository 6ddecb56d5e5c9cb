"""The v1 event form's values, as eSputnik's v1 API reads them: every value is text.

``/api/v1/event`` (and gRPC's ``legacy_v1``) carries each param value as a string, nested
JSON as an escaped string. A number or a boolean is stored as its JSON text (``5`` as
``"5"``, ``true`` as ``"true"``), as v1's string field reads it; ``null`` stays null; an
object or an array is refused naming ``params[i].value``, as v1 refuses it, since the v1
form sends those as escaped JSON text. v2 keeps every JSON value as sent.
"""

from __future__ import annotations

from dataclasses import replace

import orjson

from server.errors import Violation
from server.ingest.model import JSON, MISSING, EventInput

__all__ = ["as_v1_text"]


def _text(value: JSON) -> JSON:
    if value is None or value is MISSING or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def as_v1_text(event: EventInput) -> tuple[EventInput, list[Violation]]:
    """``event`` with its values as v1 text, and the violations of values v1 refuses."""
    problems = [
        Violation(f"params[{i}].value", "must be text in the v1 form: send nested JSON as an "
                  "escaped string, or the event to /api/v2/event")
        for i, (_, value) in enumerate(event.params) if isinstance(value, (dict, list))]
    if all(v is None or v is MISSING or isinstance(v, str) for _, v in event.params):
        return event, problems
    params = [(name, value if isinstance(value, (dict, list)) else _text(value))
              for name, value in event.params]
    return replace(event, params=params), problems
