"""Field rules of one event (eSputnik "Generate event v2"), collecting every violation.

Rules: ``eventTypeKey`` required, at most 100 characters, none of the forbidden
characters; ``keyValue`` at most 300 and the same characters, else taken from the
params by ``server.contacts.identity.derive_key_value``; params need a name and a value,
names unique and at most 100 characters; values of any JSON type (their nesting depth is
checked when a body is decoded, ``server.codec.depth``).
"""

from __future__ import annotations

import re

from server.contacts.identity import derive_key_value
from server.errors import Violation
from server.ingest.model import MISSING, EventInput

FORBIDDEN = frozenset("<;’\\/|\"`'^?!,>")
FORBIDDEN_SHOWN = "< ; ’ \\ / | \" ` ' ^ ? ! , >"
MAX_TYPE_KEY = 100
MAX_KEY_VALUE = 300
MAX_PARAM_NAME = 100
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


def check_fields(event: EventInput) -> tuple[str, list[Violation]]:
    """Every field rule: the keyValue the event is stored under (as sent, else derived from
    its params) and every violation found, none when the event passes."""
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
    return key_value, out
