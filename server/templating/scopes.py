"""Runtime objects a template can see besides data: ``$foreach`` and loop control.

``#break`` and ``#stop`` unwind through airspeed's element evaluation, which wraps
every ``Exception`` as a render error; they derive from ``BaseException`` so they
pass through it like ``GeneratorExit`` does, and are caught where Velocity stops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar


class BreakLoop(BaseException):
    """``#break``: leaves the innermost ``#foreach`` or macro (or the template)."""


class StopRender(BaseException):
    """``#stop``: ends the render, keeping what was output so far."""


class ForeachScope:
    """``$foreach`` of Velocity 1.7: count, index, hasNext, first, last, parent."""

    __slots__ = ("index", "parent", "size")

    def __init__(self, *, size: int, parent: object) -> None:
        self.index = 0
        self.size = size
        self.parent = parent

    JAVA_METHODS: ClassVar[dict[str, Callable[..., object]]] = {
        "getIndex": lambda s: s.index,
        "getCount": lambda s: s.index + 1,
        "hasNext": lambda s: s.index + 1 < s.size,
        "getHasNext": lambda s: s.index + 1 < s.size,
        "isFirst": lambda s: s.index == 0,
        "getFirst": lambda s: s.index == 0,
        "isLast": lambda s: s.index + 1 == s.size,
        "getLast": lambda s: s.index + 1 == s.size,
        "getParent": lambda s: s.parent,
    }
