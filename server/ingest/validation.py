"""Field rules of one event (eSputnik "Generate event v2"), collecting every violation.

Rules: ``eventTypeKey`` required, at most 100 characters, none of the forbidden
characters; ``keyValue`` at most 300 and the same characters, else taken from the
params by ``server.contacts.identity.derive_key_value``; params need a name and a value,
names unique and at most 100 characters; values of any JSON type, nested at most
``MAX_DEPTH`` levels.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson

from server.contacts.identity import derive_key_value
from server.errors import InvalidArgument, TooLarge, Violation
from server.ingest.model import JSON, MISSING, EventInput, ValidEvent

FORBIDDEN = frozenset("<;’\\/|\"`'^?!,>")
FORBIDDEN_SHOWN = "< ; ’ \\ / | \" ` ' ^ ? ! , >"
MAX_TYPE_KEY = 100
MAX_KEY_VALUE = 300
MAX_PARAM_NAME = 100
# A JSON object level costs three protobuf message levels (Value, Struct, map entry) and
# protobuf refuses messages nested over 100 deep, so 24 keeps every accepted event decodable.
MAX_DEPTH = 24
MAX_MESSAGE_ID = 200

_FORBIDDEN_RE = re.compile("[" + re.escape("".join(sorted(FORBIDDEN))) + "]")


def _forbidden_in(text: str) -> list[str]:
    if _FORBIDDEN_RE.search(text) is None:  # the common case, without a Python-level loop
        return []
    return sorted({ch for ch in text if ch in FORBIDDEN})


def _check_key(field: str, text: str, limit: int, out: list[Violation]) -> None:
    if len(text) > limit:
        out.append(Violation(field, f"is {len(text)} characters long; the limit is {limit}"))
    bad = _forbidden_in(text)
    if bad:
        shown = " ".join(bad)
        out.append(
            Violation(field, f"contains the forbidden character(s) {shown}; none of "
                      f"{FORBIDDEN_SHOWN} may be used")
        )


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


def validate_event(event: EventInput, *, account_id: int, max_bytes: int) -> ValidEvent:
    """Check every rule; raise InvalidArgument listing all violations, or TooLarge."""
    out: list[Violation] = []
    type_key = event.event_type_key
    if not type_key.strip():
        out.append(Violation("eventTypeKey", "is required: name the event type, e.g. \"abandoned_cart\""))
    else:
        _check_key("eventTypeKey", type_key, MAX_TYPE_KEY, out)

    seen: dict[str, int] = {}
    for index, (name, value) in enumerate(event.params):
        where = f"params[{index}]"
        if not name:
            out.append(Violation(f"{where}.name", "is required: every param needs a non-empty name"))
        elif len(name) > MAX_PARAM_NAME:
            out.append(Violation(f"{where}.name",
                                 f"is {len(name)} characters long; the limit is {MAX_PARAM_NAME}"))
        elif name in seen:
            out.append(Violation(f"{where}.name",
                                 f"duplicates the name {name!r} of params[{seen[name]}]; names must be unique"))
        else:
            seen[name] = index
        if value is MISSING:
            out.append(Violation(f"{where}.value", "is required: every param needs a value (null is allowed)"))
        elif not event.depth_checked and depth_exceeds(value, MAX_DEPTH):
            out.append(Violation(f"{where}.value", f"is nested deeper than {MAX_DEPTH} levels"))

    key_value = event.key_value
    if key_value:
        _check_key("keyValue", key_value, MAX_KEY_VALUE, out)
    else:
        derived = derive_key_value(event.params)
        if derived is None:
            out.append(Violation(
                "keyValue",
                "is required when params carry none of contactId, externalCustomerId, "
                "email, phone, pushToken",
            ))
        else:
            key_value, _source = derived
            if len(key_value) > MAX_KEY_VALUE:
                out.append(Violation("keyValue", f"taken from param {_source!r} is "
                                     f"{len(key_value)} characters long; the limit is {MAX_KEY_VALUE}"))

    if len(event.message_id) > MAX_MESSAGE_ID:
        out.append(Violation("messageId", f"is longer than {MAX_MESSAGE_ID} characters"))
    if out:
        raise InvalidArgument.from_violations(out)

    body = encode_body(event)
    if len(body) > max_bytes:
        raise TooLarge(
            f"the event is {len(body)} bytes; the limit is {max_bytes} "
            "(raise EVENTFLOW_MAX_EVENT_BYTES to allow more)"
        )
    return ValidEvent(
        account_id=account_id,
        event_type_key=type_key,
        key_value=key_value,
        body=body,
        message_id=event.message_id or None,
        occurred=event.occurred,
    )


def encode_body(event: EventInput) -> str:
    """The stored body: the event as received, in eSputnik's JSON shape."""
    doc: dict[str, Any] = {"eventTypeKey": event.event_type_key}
    if event.key_value:
        doc["keyValue"] = event.key_value
    doc["params"] = [{"name": n, "value": v} for n, v in event.params]
    return orjson.dumps(doc).decode()
