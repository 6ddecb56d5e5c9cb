"""Per-render budgets of the sandbox: output size, wall time and nesting depth.

Templates are written by account users and run on shared workers, so every
render carries a ``Budget`` (in a context variable, which is per thread and per
asyncio task) that loops, macro calls and output streams charge against.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from io import StringIO

from server.errors import RenderLimitExceeded

DEFAULT_MAX_OUTPUT = 1_000_000
DEFAULT_TIMEOUT = 2.0
# Velocity's own velocimacro.max.depth default.
MAX_MACRO_DEPTH = 20
# A range literal is materialised as a list in Velocity too; beyond this it is abuse.
MAX_RANGE = 10_000


@dataclass
class Budget:
    """What one render may still spend."""

    max_output: int
    deadline: float
    macro_depth: int = field(default=0)

    def check_time(self) -> None:
        """Fails the render once its wall-clock allowance is spent."""
        if time.monotonic() > self.deadline:
            raise RenderLimitExceeded("render took too long (time limit exceeded)")


_CURRENT: ContextVar[Budget | None] = ContextVar("template_budget", default=None)


def start(*, max_output: int, timeout: float) -> object:
    """Opens a budget for the render about to run; returns a token for ``finish``."""
    budget = Budget(max_output=max_output, deadline=time.monotonic() + timeout)
    return _CURRENT.set(budget)


def finish(token: object) -> None:
    """Closes the budget opened by ``start``."""
    _CURRENT.reset(token)  # type: ignore[arg-type]


def current() -> Budget:
    """The budget of the render in progress (a generous one outside renders)."""
    budget = _CURRENT.get()
    if budget is None:
        return Budget(max_output=DEFAULT_MAX_OUTPUT, deadline=time.monotonic() + DEFAULT_TIMEOUT)
    return budget


def check_range(size: int) -> None:
    """Refuses range literals too large to be anything but a loop bomb."""
    if size > MAX_RANGE:
        raise RenderLimitExceeded(f"range of {size} numbers exceeds the limit of {MAX_RANGE}")


class BoundedStream(StringIO):
    """Output buffer that fails the render once it passes the size budget."""

    def __init__(self) -> None:
        super().__init__()
        self._budget = current()
        self._size = 0

    def write(self, text: str) -> int:
        self._size += len(text)
        if self._size > self._budget.max_output:
            raise RenderLimitExceeded(
                f"output exceeds the limit of {self._budget.max_output} characters"
            )
        return super().write(text)
