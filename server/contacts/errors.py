"""Errors of the contacts domain; they know nothing of gRPC or HTTP.

    ValueError
    └── InvalidValue            one value broke one rule; carries ``reason`` (building block)
    Exception
    └── ContactValidationError  a contact or field definition was rejected; carries every
                                ``Violation`` found, never only the first

The transport boundary maps ``ContactValidationError`` to ``400`` / ``INVALID_ARGUMENT``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn, TypeVar

__all__ = [
    "ContactValidationError",
    "InvalidValue",
    "Violation",
    "ViolationCollector",
    "describe_value",
]

T = TypeVar("T")

# Long values are cut in messages so one bad 5,000-character text cannot flood a response.
_SHOWN_CHARS = 80
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Violation:
    """One reason a contact is rejected: ``field`` is a path such as ``channels[1].value``."""

    field: str
    value: object
    message: str


class InvalidValue(ValueError):
    """A single value broke a rule; ``reason`` says what is wrong and how to fix it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ContactValidationError(Exception):
    """A contact change was rejected as a whole; ``violations`` lists every problem."""

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = list(violations)
        count = len(self.violations)
        summary = "; ".join(violation.message for violation in self.violations[:3])
        more = f" (and {count - 3} more)" if count > 3 else ""
        super().__init__(f"{count} invalid contact value(s): {summary}{more}")


def describe_value(value: object) -> str:
    """Show ``value`` as JSON, as the caller sent it, cut to a readable length."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
        if _SURROGATE.search(text):
            # A lone surrogate cannot be encoded as UTF-8; escape it so responses still serialise.
            text = json.dumps(value, default=str)
    except (TypeError, ValueError, RecursionError):
        # Values come from parsed JSON, but a caller may hand us anything; never fail here.
        text = f"<{type(value).__name__}>"
    if len(text) > _SHOWN_CHARS:
        text = text[: _SHOWN_CHARS - 1] + "…"
    return text


class ViolationCollector:
    """Runs readers over many values and keeps every failure, so callers report all at once."""

    def __init__(self) -> None:
        self.violations: list[Violation] = []

    def add(self, *, path: str, value: object, reason: str) -> None:
        """Record that ``value`` at ``path`` is wrong for ``reason``."""
        message = f"{path} {describe_value(value)}: {reason}"
        self.violations.append(Violation(field=path, value=value, message=message))

    def read(self, *, path: str, value: object, reader: Callable[[object], T]) -> T | None:
        """Return ``reader(value)``, or record its violation and return ``None``."""
        try:
            return reader(value)
        except InvalidValue as error:
            self.add(path=path, value=value, reason=error.reason)
            return None

    def reject(self, *, path: str, value: object, reason: str) -> NoReturn:
        """Record one more violation and raise with everything recorded so far."""
        self.add(path=path, value=value, reason=reason)
        raise ContactValidationError(self.violations)

    def raise_if_any(self) -> None:
        """Raise ``ContactValidationError`` with everything recorded, if anything was."""
        if self.violations:
            raise ContactValidationError(self.violations)
