"""Whether an event is accepted: the one pipeline behind every event entry point.

A decoded event (``server.codec``: JSON types and nesting depth checked) is accepted for
an account, or refused by a domain error, in these steps, in order:

1. field rules (``validation.check_fields``): every violation of the event's own fields,
   and, for the v1 form, its values as text (``v1.as_v1_text``);
2. ``contactJson`` (``contacts.contact_json``): the contact the event carries must be
   one the account would accept;
3. "Validate parameters" (``eventtypes.settings``): the params the event's type
   requires must be there, one violation of ``params`` per missing one, naming it and the
   structure the type expects; the violations of steps 1 to 3 are refused together, in
   one ``InvalidArgument``;
4. the past window (``check_occurred``): ``occurred`` more than ``FUTURE_SLACK`` ahead or
   ``PAST_LIMIT`` back is refused (``OccurredError`` with eSputnik's status);
5. segmentation, for a past event (one with ``occurred``): its type's switch must be on
   now (``SegmentationDisabled``, ``EVENT_SEGMENTATION_DISABLED``): eSputnik's import feeds
   history and segmentation, and an event of a type that is off would feed neither;
6. size (``stored_body``): the stored JSON within ``max_bytes`` (``TooLarge``).

The event accepted carries its params' JSON types for the recorded structure of its
type (``eventtypes.shapes``, counted by the writer).

Callers: ``EventService``'s ``GenerateEvent``, ``GenerateEvents`` and ``StreamEvents``
(the gateway's event routes call those), and the Launch event block in the workflow
engine and in the simulator. Rate limits are charged before, by the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson

from server.contacts.contact_json import contact_json_param
from server.db.models import utcnow
from server.errors import (
    InvalidArgument,
    OccurredError,
    SegmentationDisabled,
    TooLarge,
    Violation,
)
from server.eventtypes.rules import AccountRules
from server.eventtypes.shapes import param_types
from server.ingest.model import EventInput, ValidEvent
from server.ingest.v1 import as_v1_text
from server.ingest.validation import check_fields

__all__ = ["FUTURE_SLACK", "PAST_LIMIT", "Acceptance", "accept", "check_occurred",
           "stored_body"]

PAST_LIMIT = timedelta(days=365 * 2)
FUTURE_SLACK = timedelta(minutes=5)


class ContactJsonRule(Protocol):
    """Step 2's rule: ``contacts.contact_json.ContactJsonCheck`` (the account's field
    definitions, cached per process)."""

    async def violations(self, name: str, value: Any, *, account_id: int
                         ) -> list[Violation]: ...


class ParamRules(Protocol):
    """Steps 3 and 5's rules: ``eventtypes.rules.EventTypeRules`` (the account's types that
    require params, by key, and those with segmentation on; cached per process while
    changes can reach it)."""

    def cached(self, account_id: int) -> AccountRules | None: ...

    async def load(self, account_id: int) -> AccountRules: ...


@dataclass(frozen=True, slots=True)
class Acceptance:
    """What accepting an event needs besides the event (one per process, or simulation)."""

    max_bytes: int
    contact_json: ContactJsonRule
    # Steps 3 and 5's rules, per account (one cache per process: ``eventtypes.rules``).
    event_types: ParamRules
    clock: Callable[[], datetime] = utcnow


def check_occurred(occurred: datetime, *, now: datetime) -> None:
    """Step 4, the past window of eSputnik's import, for an event that carries ``occurred``."""
    if occurred > now + FUTURE_SLACK:
        raise OccurredError("OCCURRED_TIME_IN_FUTURE")
    if occurred < now - PAST_LIMIT:
        raise OccurredError("OCCURRED_TIME_TOO_DEPTH")


def stored_body(event: EventInput, *, max_bytes: int) -> str:
    """Step 6: the body as stored (the event as received, in eSputnik's JSON shape),
    refused with ``TooLarge`` over ``max_bytes``."""
    doc: dict[str, Any] = {"eventTypeKey": event.event_type_key}
    if event.key_value:
        doc["keyValue"] = event.key_value
    doc["params"] = [{"name": n, "value": v} for n, v in event.params]
    body = orjson.dumps(doc).decode()
    if len(body) > max_bytes:
        raise TooLarge(
            f"the event is {len(body)} bytes; the limit is {max_bytes} "
            "(raise EVENTFLOW_MAX_EVENT_BYTES to allow more)"
        )
    return body


async def accept(event: EventInput, *, account_id: int, using: Acceptance) -> ValidEvent:
    """The event as it will be stored for ``account_id``; raises InvalidArgument (or its
    OccurredError or SegmentationDisabled) or TooLarge."""
    event, violations = as_v1_text(event) if event.legacy_v1 else (event, [])
    key_value, field_violations = check_fields(event)
    violations += field_violations
    found = contact_json_param(event.params)
    if found is not None:  # only events that carry one pay for the check's coroutine
        violations += await using.contact_json.violations(*found, account_id=account_id)
    rules = using.event_types.cached(account_id)
    if rules is None:
        rules = await using.event_types.load(account_id)
    if rules.required:
        required = rules.required.get(event.event_type_key)
        if required is not None:
            violations += required.violations(event)
    if violations:
        raise InvalidArgument.from_violations(violations)
    if event.occurred is not None:
        check_occurred(event.occurred, now=using.clock())
        if event.event_type_key not in rules.segmented:
            raise SegmentationDisabled(event.event_type_key)
    return ValidEvent(
        account_id=account_id,
        event_type_key=event.event_type_key,
        key_value=key_value,
        body=stored_body(event, max_bytes=using.max_bytes),
        message_id=event.message_id or None,
        occurred=event.occurred,
        param_types=param_types(event.params),
    )
