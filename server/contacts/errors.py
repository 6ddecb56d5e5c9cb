"""How the contacts domain collects what is wrong with a contact, to report it all at once.

``InvalidValue`` (a ``ValueError``) is the building block: one value broke one rule. It never
leaves the domain; a ``ViolationCollector`` turns each into a ``Violation`` and raises
``server.errors.ContactValidationError`` (part of the one error tree) with every one found.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import NoReturn, TypeVar

from server.errors import ContactValidationError, Violation

__all__ = [
    "InvalidValue",
    "ViolationCollector",
    "describe_value",
    "value_violation",
]

T = TypeVar("T")

# Long values are cut in messages so one bad 5,000-character text cannot flood a response.
_SHOWN_CHARS = 80
_SURROGATE = re.compile("[\ud800-\udfff]")


class InvalidValue(ValueError):
    """A single value broke a rule; ``reason`` says what is wrong and how to fix it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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


def value_violation(*, path: str, value: object, reason: str) -> Violation:
    """The violation of ``value`` at ``path``: its message shows the value and the reason."""
    return Violation(field=path, message=f"{describe_value(value)}: {reason}", value=value)


class ViolationCollector:
    """Runs readers over many values and keeps every failure, so callers report all at once."""

    def __init__(self) -> None:
        self.violations: list[Violation] = []

    def add(self, *, path: str, value: object, reason: str) -> None:
        """Record that ``value`` at ``path`` is wrong for ``reason``."""
        self.violations.append(value_violation(path=path, value=value, reason=reason))

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
