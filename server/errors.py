"""Every error eventflow raises on purpose, in one tree; none of them knows gRPC or HTTP.

    EventflowError                  base; ``message`` and ``details`` (facts as strings)
    ├── InvalidArgument             bad input; ``violations`` names each field and reason
    │   ├── ContactValidationError  a contact or field definition was rejected; each
    │   │                           violation also keeps the ``value`` it is about
    │   ├── OccurredError           an event's ``occurred`` time is missing, malformed or
    │   │                           out of window; ``status`` is eSputnik's per-event status
    │   ├── SegmentationDisabled    a past event of a type whose segmentation is off
    │   │                           (``status``: ``EVENT_SEGMENTATION_DISABLED``)
    │   ├── UnsupportedMediaType    the body is not in a format the API reads (not JSON)
    │   ├── TemplateSyntaxInvalid   a template to be saved does not compile: ``field``,
    │   │                           ``line``, ``column``
    │   └── TemplateError           a template cannot be compiled or rendered: ``line``,
    │       │                       ``column``, ``reason`` and ``kind``
    │       ├── WrongFormat         the JSON data text does not parse ("Wrong Format")
    │       ├── ReadOnlyError       the template tried to change event data
    │       └── RenderLimitExceeded output size, render time or nesting budget exhausted
    ├── Unauthenticated             missing or unknown API key
    ├── PermissionDenied            key valid but not allowed
    ├── NotFound                    no such object (or route) in the caller's account
    ├── MethodNotAllowed            the path exists, not with this method
    ├── Conflict                    the current state does not allow the change
    ├── TooLarge                    a body, event or header over its limit (never retried)
    ├── RateLimited                 the account is over its rate limit; ``retry_after`` s
    └── Unavailable                 a dependency is down; retry later

Two boundaries translate them, each in one place: ``server.api.status`` maps an error to
a gRPC status (code, ``google.rpc.ErrorInfo`` reason and metadata, ``BadRequest`` field
violations), which the interceptor (``server.api.errors``) answers; the gateway's
``server.gateway.http.error_response`` maps that status, or an error the gateway raised
itself, to the HTTP answer. ``tests/core/test_error_map.py`` fails for a class of this
tree that either boundary does not map (``docs/errors.md`` has the table).

Outside the tree, on purpose: signals that never reach a caller. ``InvalidValue``
(``server.contacts.errors``) is one value's fault, always gathered into a
``ContactValidationError``; ``StepFailed`` and ``RetryLater`` (``server.workflows.runtime``)
are how a workflow step ends, recorded on the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Conflict",
    "ContactValidationError",
    "EventflowError",
    "InvalidArgument",
    "MethodNotAllowed",
    "NotFound",
    "OccurredError",
    "PermissionDenied",
    "RateLimited",
    "ReadOnlyError",
    "RenderLimitExceeded",
    "SegmentationDisabled",
    "TemplateError",
    "TemplateSyntaxInvalid",
    "TooLarge",
    "Unauthenticated",
    "Unavailable",
    "UnsupportedMediaType",
    "Violation",
    "WrongFormat",
]


@dataclass(frozen=True, slots=True)
class Violation:
    """One reason a field is wrong: ``field`` is a path such as ``params[2].name``;
    ``message`` says what is wrong without repeating the path; ``value`` is the value
    it is about, when a rule judged one (it stays in the process, the message shows it)."""

    field: str
    message: str
    value: object = None

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class EventflowError(Exception):
    """Base of every error the domain raises on purpose; ``message`` is for people."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def details(self) -> dict[str, str]:
        """Facts for programs beyond the message (a template's line, a retry delay)."""
        return {}


class InvalidArgument(EventflowError):
    """Bad input; ``violations`` lists every field found wrong, never only the first."""

    def __init__(self, message: str, violations: Sequence[Violation] | None = None) -> None:
        super().__init__(message)
        self.violations = list(violations or [])

    @classmethod
    def from_violations(cls, violations: Sequence[Violation]) -> InvalidArgument:
        return cls(_summary(violations), violations)


def _summary(violations: Sequence[Violation]) -> str:
    """The first violation as a sentence, and how many more there are."""
    first = violations[0]
    more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
    return f"{first}{more}"


class ContactValidationError(InvalidArgument):
    """A contact change was rejected as a whole; ``violations`` lists every problem."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        super().__init__(_summary(violations), violations)


class OccurredError(InvalidArgument):
    """An event's ``occurred`` is refused; ``status`` is the per-event status eSputnik
    answers for it (``OCCURRED_DATE_IS_REQUIRED``, ``OCCURRED_TIME_TOO_DEPTH``...)."""

    def __init__(self, status: str) -> None:
        super().__init__(f"occurred: {status}", [Violation("occurred", status)])
        self.status = status

    @property
    def details(self) -> dict[str, str]:
        return {"status": self.status}


class SegmentationDisabled(InvalidArgument):
    """A past event (one with ``occurred``) of a type whose segmentation switch is off now:
    eSputnik's import feeds segmentation, so it refuses what could feed none."""

    status = "EVENT_SEGMENTATION_DISABLED"

    def __init__(self, event_type_key: str) -> None:
        violations = [Violation(
            "eventTypeKey", f"{self.status}: event type {event_type_key!r} has segmentation "
            f"off; switch it on (PATCH /api/v1/event-types/{event_type_key} "
            '{"segmentation": true}) to import its past events')]
        super().__init__(_summary(violations), violations)

    @classmethod
    def from_violations(cls, violations: Sequence[Violation]) -> SegmentationDisabled:
        """The error back from the violations it was answered with (a refused result)."""
        error = cls.__new__(cls)
        InvalidArgument.__init__(error, _summary(violations), violations)
        return error

    @property
    def details(self) -> dict[str, str]:
        return {"status": self.status}


class UnsupportedMediaType(InvalidArgument):
    """The body is not in a format this API reads."""


class TemplateError(InvalidArgument):
    """A template cannot be compiled or rendered; says where and why.

    ``reason`` is the short cause, ``kind`` one of ``syntax``, ``render``, ``limit`` or
    ``wrong_format``; ``line`` and ``column`` are ``None`` when no position applies.
    """

    def __init__(self, reason: str, *, line: int | None = None, column: int | None = None) -> None:
        self.reason = reason
        self.line = line
        self.column = column
        super().__init__(self._sentence())

    @classmethod
    def at(cls, reason: str, *, line: int | None, column: int | None) -> TemplateError:
        """An error of this kind with ``reason`` as is (a subclass's own ``__init__``
        would reword it): for errors moved from one place or process to another."""
        error = cls.__new__(cls)
        TemplateError.__init__(error, reason, line=line, column=column)
        return error

    def _sentence(self) -> str:
        if self.line is None:
            return f"Template error: {self.reason}"
        return f"Template error at line {self.line}, column {self.column}: {self.reason}"

    @property
    def kind(self) -> str:
        return "syntax" if self.reason.startswith("syntax error") else "render"

    @property
    def details(self) -> dict[str, str]:
        return {"line": str(self.line or 0), "column": str(self.column or 0), "kind": self.kind}


class WrongFormat(TemplateError):
    """The JSON data for a message is not valid JSON (eSputnik's "Wrong Format")."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"Wrong Format: {detail}")

    @property
    def kind(self) -> str:
        return "wrong_format"


class RenderLimitExceeded(TemplateError):
    """The sandbox stopped a render that grew too large, too slow or too deep."""

    @property
    def kind(self) -> str:
        return "limit"


class ReadOnlyError(TemplateError):
    """A template tried to change event data."""

    def __init__(self) -> None:
        super().__init__("event data is read-only")


class TemplateSyntaxInvalid(InvalidArgument):
    """A part of a template to be saved does not compile; says which part and where."""

    def __init__(self, *, field: str, error: TemplateError) -> None:
        super().__init__(f"{field}: {error}", [Violation(field, str(error))])
        self.field = field
        self.line = error.line or 0
        self.column = error.column or 0

    @property
    def details(self) -> dict[str, str]:
        return {"field": self.field, "line": str(self.line), "column": str(self.column)}


class Unauthenticated(EventflowError):
    """No API key, or one this server does not know."""


class PermissionDenied(EventflowError):
    """The API key is valid but may not do this."""


class NotFound(EventflowError):
    """No such object in the caller's account (or no such route)."""


class MethodNotAllowed(EventflowError):
    """The path exists, but not with this method."""


class Conflict(EventflowError):
    """The current state does not allow the change."""


class TooLarge(EventflowError):
    """A body, event or header over the configured limit; sending it again cannot help.
    ``part`` says which: ``body`` (the default) or ``headers``."""

    def __init__(self, message: str, *, part: str = "body") -> None:
        super().__init__(message)
        self.part = part

    @property
    def details(self) -> dict[str, str]:
        return {"part": self.part}


class RateLimited(EventflowError):
    """The account is over its rate limit; ``retry_after`` is when to try again (s)."""

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def details(self) -> dict[str, str]:
        return {"retry_after": str(self.retry_after)}


class Unavailable(EventflowError):
    """A dependency (database, writer, Redis) is down or going down; retry later."""
