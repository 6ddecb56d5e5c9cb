"""An event's verdict on the wire: ``EventResult`` to and from the domain.

The server fills a result from the accepted write or from the domain error that refused
the event (``refuse``); the gateway reads the error back from a refused result
(``refusal``) and answers it as it answers the same error raised for a whole call. Every
``status`` string is the name of an ``EventResult.Status`` value (events.proto).
"""

from __future__ import annotations

from eventflow.v1 import events_pb2
from server.errors import (
    EventflowError,
    InvalidArgument,
    OccurredError,
    RateLimited,
    SegmentationDisabled,
    TooLarge,
    Violation,
)
from server.ingest.model import WriteResult

ACCEPTED = "ACCEPTED"
INVALID = "INVALID"
TOO_LARGE = "TOO_LARGE"
RATE_LIMITED = "RATE_LIMITED"
SEGMENTATION_DISABLED = SegmentationDisabled.status
# The whole-event refusals, named by a violation of this field.
EVENT_FIELD = "event"

# Every status a result may carry; those not named above are ``occurred`` refusals.
STATUSES = frozenset(events_pb2.EventResult.Status.keys()) - {"STATUS_UNSPECIFIED"}
_OCCURRED = STATUSES - {ACCEPTED, INVALID, TOO_LARGE, RATE_LIMITED, SEGMENTATION_DISABLED}

# The errors that refuse one event and leave the rest of its call to go on.
REFUSALS: tuple[type[EventflowError], ...] = (InvalidArgument, TooLarge, RateLimited)


def status_of(error: EventflowError) -> str:
    """The per-event status that stands for ``error`` (one of ``REFUSALS``)."""
    if isinstance(error, (OccurredError, SegmentationDisabled)):
        return error.status
    if isinstance(error, InvalidArgument):
        return INVALID
    if isinstance(error, TooLarge):
        return TOO_LARGE
    if isinstance(error, RateLimited):
        return RATE_LIMITED
    raise TypeError(f"{type(error).__name__} does not refuse a single event")


def refuse(result: events_pb2.EventResult, error: EventflowError) -> None:
    """Fill ``result`` as refused by ``error``: its status and violations."""
    result.status = status_of(error)
    if isinstance(error, InvalidArgument):
        violations = error.violations
    else:
        violations = [Violation(EVENT_FIELD, error.message)]
    for v in violations:
        result.violations.add(field=v.field, description=v.message)
    if isinstance(error, RateLimited):
        result.retry_after = error.retry_after


def accept(result: events_pb2.EventResult, written: WriteResult) -> None:
    """Fill ``result`` as stored."""
    result.event_id, result.duplicate, result.status = \
        written.event_id, written.duplicate, ACCEPTED


def refusal(result: events_pb2.EventResult) -> EventflowError | None:
    """The domain error a refused ``result`` stands for; None when it was accepted."""
    status = result.status
    if status == ACCEPTED:
        return None
    violations = [Violation(v.field, v.description) for v in result.violations]
    if status in (TOO_LARGE, RATE_LIMITED):
        message = violations[0].message if violations else status
        if status == TOO_LARGE:
            return TooLarge(message)
        return RateLimited(message, retry_after=max(1, result.retry_after))
    if status in _OCCURRED:
        return OccurredError(status)
    if status == SEGMENTATION_DISABLED and violations:
        return SegmentationDisabled.from_violations(violations)
    if status != INVALID or not violations:
        return InvalidArgument(f"the event was refused ({status})")
    return InvalidArgument.from_violations(violations)
