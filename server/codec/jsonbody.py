"""The eSputnik JSON body of an event, shape-checked into an ``EventInput``.

v2 param values may be any JSON value. v1 values travel as strings (nested JSON as an
escaped string); acceptance reads other values as v1 does (``server.ingest.v1``). A body
carries only the members of an event (``EVENT_MEMBERS``); any other is refused by name,
except a public PHP client's v1 ``parameters``, read as ``params``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from server.codec.depth import depth_exceeds, few_containers, too_deep
from server.errors import InvalidArgument, OccurredError, Violation
from server.ingest.model import JSON, MISSING, EventInput

EVENT_MEMBERS = ("eventTypeKey", "keyValue", "params", "messageId", "occurred")
V1_PARAMS = "parameters"


def _members(doc: dict[str, JSON], *, where: str, legacy_v1: bool) -> tuple[str, list[Violation]]:
    """Which member holds the params, and a violation for each unknown member."""
    out = [Violation(f"{where}{name}", "is not a member of an event; it takes "
                     + ", ".join(EVENT_MEMBERS))
           for name in doc if name not in EVENT_MEMBERS and not (legacy_v1 and name == V1_PARAMS)]
    if legacy_v1 and V1_PARAMS in doc:
        if "params" in doc:
            out.append(Violation(f"{where}{V1_PARAMS}", "send params or parameters, not both"))
        return V1_PARAMS, out
    return "params", out


def _type_name(value: JSON) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def event_from_json(doc: JSON, *, legacy_v1: bool = False, where: str = "",
                    past_event: bool = False, source: bytes | None = None) -> EventInput:
    """Check JSON types and the nesting rule of one event body; raise InvalidArgument
    naming each wrong field.

    ``past_event``: an event of eSputnik's past-events import, whose ``occurred`` is
    required (``OccurredError`` when it is missing or malformed).

    ``source``, the text ``doc`` was parsed from, lets the nesting walk be skipped when
    the text cannot hold a value nested too deep (``depth.few_containers``).
    """
    check_depth = source is None or not few_containers(source)
    if not isinstance(doc, dict):
        raise InvalidArgument.from_violations(
            [Violation(where or "body", f"must be a JSON object, not {_type_name(doc)}")])
    params_member, out = _members(doc, where=where, legacy_v1=legacy_v1)
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
    raw_params = doc.get(params_member, [])
    if raw_params is None:
        raw_params = []
    if not isinstance(raw_params, list):
        out.append(Violation(f"{where}{params_member}",
                             f"must be an array of {{\"name\", \"value\"}} objects, not "
                             f"{_type_name(raw_params)}"))
        raw_params = []
    for i, entry in enumerate(raw_params):
        at = f"{where}{params_member}[{i}]"
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
            out.append(too_deep(at))
            continue
        params.append((name, value))
    message_id = doc.get("messageId") or ""
    if not isinstance(message_id, str):
        out.append(Violation(f"{where}messageId", f"must be a string, not {_type_name(message_id)}"))
        message_id = ""
    occurred = None
    if past_event:
        occurred = parse_occurred(doc.get("occurred"))
    if out:
        raise InvalidArgument.from_violations(out)
    return EventInput(event_type_key=type_key, key_value=key_value, params=params,
                      message_id=message_id, occurred=occurred, legacy_v1=legacy_v1)


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


__all__ = ["EVENT_MEMBERS", "event_from_json", "parse_occurred"]
