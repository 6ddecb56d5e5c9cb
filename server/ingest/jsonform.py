"""The eSputnik JSON body of an event, shape-checked into an ``EventInput``.

v2 param values may be any JSON value. v1 values travel as strings (nested JSON as an
escaped string) and are kept exactly as sent; real v1 clients also send booleans and
numbers, which are accepted as they are.
"""

from __future__ import annotations

from datetime import UTC, datetime

from server.errors import InvalidArgument, OccurredError, Violation
from server.ingest.model import JSON, MISSING, EventInput
from server.ingest.validation import MAX_DEPTH, depth_exceeds


def _type_name(value: JSON) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def event_from_json(doc: JSON, *, legacy_v1: bool = False, where: str = "",
                    allow_occurred: bool = False, check_depth: bool = True) -> EventInput:
    """Check JSON types of one event body; raise InvalidArgument naming each wrong field.

    ``check_depth=False`` skips the walk of param values for the nesting rule: only for a
    caller that knows none can nest past ``MAX_DEPTH`` (the gateway, when the body's text
    holds at most ``MAX_DEPTH`` ``[`` and ``{`` characters in all; see ``few_containers``).
    """
    out: list[Violation] = []
    if not isinstance(doc, dict):
        raise InvalidArgument.from_violations(
            [Violation(where or "body", f"must be a JSON object, not {_type_name(doc)}")])
    type_key = doc.get("eventTypeKey")
    if type_key is None:
        type_key = ""
    elif not isinstance(type_key, str):
        out.append(Violation(f"{where}eventTypeKey", f"must be a string, not {_type_name(type_key)}"))
        type_key = ""
    key_value = doc.get("keyValue")
    if key_value is None:
        key_value = ""
    elif isinstance(key_value, (int, float)) and not isinstance(key_value, bool):
        # Phone numbers arrive as JSON numbers from some clients; the key is their text.
        key_value = str(key_value)
    elif not isinstance(key_value, str):
        out.append(Violation(f"{where}keyValue", f"must be a string, not {_type_name(key_value)}"))
        key_value = ""
    params: list[tuple[str, JSON]] = []
    raw_params = doc.get("params", [])
    if raw_params is None:
        raw_params = []
    if not isinstance(raw_params, list):
        out.append(Violation(f"{where}params",
                             f"must be an array of {{\"name\", \"value\"}} objects, not "
                             f"{_type_name(raw_params)}"))
        raw_params = []
    for i, entry in enumerate(raw_params):
        at = f"{where}params[{i}]"
        if not isinstance(entry, dict):
            out.append(Violation(at, f"must be an object with name and value, not {_type_name(entry)}"))
            continue
        name = entry.get("name", "")
        if not isinstance(name, str):
            out.append(Violation(f"{at}.name", f"must be a string, not {_type_name(name)}"))
            name = ""
        value = entry.get("value", MISSING)
        if check_depth and isinstance(value, (dict, list)) and depth_exceeds(value):
            # Refused here: a value this deep cannot be carried as a protobuf Value.
            out.append(Violation(f"{at}.value", f"is nested deeper than {MAX_DEPTH} levels"))
            continue
        params.append((name, value))
    message_id = doc.get("messageId") or ""
    if not isinstance(message_id, str):
        out.append(Violation(f"{where}messageId", f"must be a string, not {_type_name(message_id)}"))
        message_id = ""
    occurred = None
    if allow_occurred and "occurred" in doc:
        occurred = parse_occurred(doc["occurred"])
    if out:
        raise InvalidArgument.from_violations(out)
    return EventInput(event_type_key=type_key, key_value=key_value, params=params,
                      message_id=message_id, occurred=occurred, legacy_v1=legacy_v1)


def few_containers(raw: bytes) -> bool:
    """True when JSON text ``raw`` cannot hold a value nested past ``MAX_DEPTH``.

    Every object or array of the parsed document starts at a ``{`` or ``[`` of the text
    (those inside strings only add to the count), and a param value nested past
    ``MAX_DEPTH`` needs more than ``MAX_DEPTH`` of them, so counting the two bytes, far
    cheaper than walking the values, is enough for nearly every real body.
    """
    return raw.count(b"{") + raw.count(b"[") <= MAX_DEPTH


def parse_occurred(value: JSON) -> datetime:
    """eSputnik's past-event time: ``YYYY-MM-DDTHH:mm`` or ``YYYY-MM-DD`` (UTC)."""
    if value is None or value == "":
        raise OccurredError("OCCURRED_DATE_IS_REQUIRED")
    if not isinstance(value, str):
        raise OccurredError("INCORRECT_OCCURRED_DATE_FORMAT")
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise OccurredError("INCORRECT_OCCURRED_DATE_FORMAT")


__all__ = ["event_from_json", "few_containers", "parse_occurred"]
