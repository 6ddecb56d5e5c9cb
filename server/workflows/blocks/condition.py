"""``condition``: go to ``onTrue`` or ``onFalse`` by conditions on params and facts."""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from server.workflows import conditions
from server.workflows.blocks.base import Block, BlockType, Say, register
from server.workflows.runtime import BlockRuntime, RunView, StepOutcome

BRANCHES = ("onTrue", "onFalse")


def check(block: Block, say: Say) -> None:
    out: list[tuple[str, str]] = []
    if "conditions" not in block:
        say("conditions", "is required: the checks deciding onTrue or onFalse")
    conditions.check_condition(block.get("conditions", []), path="conditions",
                               facts_allowed=True, out=out)
    for field, reason in out:
        say(field, reason)
    for field in BRANCHES:
        if not isinstance(block.get(field), str):
            say(field, "is required: the id of the next block")


def edges(block: Block) -> Iterator[tuple[str, str]]:
    for field in BRANCHES:
        if isinstance(block.get(field), str):
            yield field, block[field]


async def run(block: Block, view: RunView, rt: BlockRuntime) -> StepOutcome:
    cond = block["conditions"]
    known = {(k, orjson.dumps(a)): await rt.fact(view, k, a)
             for k, a in conditions.fact_leaves(cond)}
    result = conditions.holds(cond, params=view.params,
                              facts=lambda k, a: known[(k, orjson.dumps(a))])
    return StepOutcome("done", block["onTrue"] if result else block["onFalse"],
                       detail={"result": result})


register(BlockType("condition", run=run, check=check, edges=edges))
