"""Errors raised by the template engine.

Exception tree (all carry ``line``, ``column`` and ``reason``)::

    TemplateError            syntax error, failing reference, sandbox refusal
    ├── WrongFormat          the JSON data text does not parse
    ├── ReadOnlyError        the template tried to change event data
    └── RenderLimitExceeded  output size, render time or nesting budget exhausted
"""

from __future__ import annotations


class TemplateError(Exception):
    """A template cannot be compiled or rendered; says where and why."""

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


class WrongFormat(TemplateError):
    """The JSON data for a message is not valid JSON (eSputnik's "Wrong Format")."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"Wrong Format: {detail}")


class RenderLimitExceeded(TemplateError):
    """The sandbox stopped a render that grew too large, too slow or too deep."""


class ReadOnlyError(TemplateError):
    """A template tried to change event data."""

    def __init__(self) -> None:
        super().__init__("event data is read-only")
