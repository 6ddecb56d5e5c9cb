"""The block registry: what a block type is, how it registers, and ``execute``.

``BlockType`` is the whole contract of a block: ``check`` reports bad fields on save,
``edges`` names the blocks it can go to, ``run`` does one step. ``external`` blocks have
effects outside the database (SMTP, HTTP), so the engine runs them before the step's
transaction, guarded by a delivery record; the others run inside it. ``waits`` marks a
block that pauses the run (a loop must pass through one).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from server.workflows.refs import substitute, text_of
from server.workflows.runtime import BlockRuntime, RunView, StepFailed, StepOutcome

__all__ = ["BlockType", "Say", "block_type", "execute", "names", "next_edge", "register",
           "sub", "text"]

Block = dict[str, Any]
Say = Callable[[str, str], None]
"""``say(field, reason)``: report a problem with one field of the block being checked."""
Run = Callable[[Block, RunView, BlockRuntime], Awaitable[StepOutcome]]


def next_edge(block: Block) -> Iterator[tuple[str, str]]:
    """The edge of a block that goes on to ``next`` (the default)."""
    if isinstance(block.get("next"), str):
        yield "next", block["next"]


def _no_fields(_block: Block, _say: Say) -> None:
    return None


@dataclass(frozen=True, slots=True)
class BlockType:
    name: str
    run: Run
    check: Callable[[Block, Say], None] = _no_fields
    edges: Callable[[Block], Iterator[tuple[str, str]]] = next_edge
    # Fields whose text may hold ${} references (checked on save).
    ref_fields: tuple[str, ...] = ()
    external: bool = False
    waits: bool = False


_TYPES: dict[str, BlockType] = {}


def register(*kinds: BlockType) -> None:
    """Make ``kinds`` usable in definitions."""
    for kind in kinds:
        if kind.name in _TYPES:
            raise RuntimeError(f"block type {kind.name!r} is registered twice")
        _TYPES[kind.name] = kind


def block_type(name: Any) -> BlockType | None:
    return _TYPES.get(name) if isinstance(name, str) else None


def names() -> list[str]:
    """Every block type name, sorted (for messages and docs)."""
    return sorted(_TYPES)


async def execute(block: Block, run: RunView, rt: BlockRuntime) -> StepOutcome:
    """One step of ``block`` for ``run``; StepFailed becomes a failed outcome."""
    kind = block_type(block.get("type"))
    try:
        if kind is None:  # saved definitions are checked, so only a removed type gets here
            raise StepFailed(f"unknown block type {block.get('type')!r}")
        return await kind.run(block, run, rt)
    except StepFailed as exc:
        return StepOutcome("failed", None, detail={"reason": exc.reason})


def sub(run: RunView, value: Any) -> Any:
    """``value`` with the run's ${} references replaced (a lone reference keeps its JSON)."""
    return substitute(value, params=run.params, key_value=run.key_value)


def text(run: RunView, value: Any) -> str:
    """``value`` with the run's ${} references replaced, as text."""
    return text_of(value, params=run.params, key_value=run.key_value)
