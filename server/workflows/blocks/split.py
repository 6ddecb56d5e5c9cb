"""``split``: an A/B split over ``branches`` by percent, stable for a retried step."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from server.workflows.blocks.base import Block, BlockType, Say, register
from server.workflows.runtime import BlockRuntime, RunView, StepOutcome


def check(block: Block, say: Say) -> None:
    branches = block.get("branches")
    if not isinstance(branches, list) or len(branches) < 2:
        say("branches", 'is required: at least two {"percent", "next"}')
        return
    total = 0
    for i, branch in enumerate(branches):
        pct = branch.get("percent") if isinstance(branch, dict) else None
        if not isinstance(pct, int) or isinstance(pct, bool) or pct < 0:
            say(f"branches[{i}].percent", "must be a whole number from 0 to 100")
            continue
        total += pct
        if not isinstance(branch.get("next"), str):
            say(f"branches[{i}].next", "is required: the id of the next block")
    if total != 100:
        say("branches", f"percentages add up to {total}, not 100")


def edges(block: Block) -> Iterator[tuple[str, str]]:
    for i, branch in enumerate(block.get("branches") or []):
        if isinstance(branch, dict) and isinstance(branch.get("next"), str):
            yield f"branches[{i}].next", branch["next"]


async def run(block: Block, view: RunView, _rt: BlockRuntime) -> StepOutcome:
    # Derived from run and step, so a retried step takes the same branch.
    digest = hashlib.sha256(f"{view.account_id}:{view.run_id}:{view.seq}".encode()).digest()
    roll = int.from_bytes(digest[:8], "big") % 100
    total = 0
    for i, branch in enumerate(block["branches"]):
        total += branch["percent"]
        if roll < total:
            return StepOutcome("done", branch["next"], detail={"branch": i, "roll": roll})
    return StepOutcome("done", block["branches"][-1]["next"], detail={"roll": roll})


register(BlockType("split", run=run, check=check, edges=edges))
