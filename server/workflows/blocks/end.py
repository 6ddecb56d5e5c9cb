"""``end``: the run ends (as it does after any block without ``next``)."""

from __future__ import annotations

from collections.abc import Iterator

from server.workflows.blocks.base import Block, BlockType, register
from server.workflows.runtime import BlockRuntime, RunView, StepOutcome


def edges(_block: Block) -> Iterator[tuple[str, str]]:
    return iter(())


async def run(_block: Block, _view: RunView, _rt: BlockRuntime) -> StepOutcome:
    return StepOutcome("done", None)


register(BlockType("end", run=run, edges=edges))
