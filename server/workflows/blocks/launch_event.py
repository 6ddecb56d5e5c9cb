"""``launch_event``: validate and store a new event in the step's transaction; it is
dispatched to the workers after the commit."""

from __future__ import annotations

from server.workflows.blocks.base import Block, BlockType, Say, register, sub, text
from server.workflows.runtime import BlockRuntime, RunView, StepOutcome


def check(block: Block, say: Say) -> None:
    if not isinstance(block.get("eventTypeKey"), str) or not block["eventTypeKey"]:
        say("eventTypeKey", "is required: the type of the event to generate")
    if not isinstance(block.get("params", []), (list, dict)):
        say("params", "must be a list of {name, value} or an object")


async def run(block: Block, view: RunView, rt: BlockRuntime) -> StepOutcome:
    raw = sub(view, block.get("params", []))
    if isinstance(raw, dict):
        params = [{"name": k, "value": v} for k, v in raw.items()]
    else:
        params = [p for p in raw if isinstance(p, dict) and "name" in p]
    key = text(view, block.get("keyValue", "${key}"))
    event_id = await rt.launch_event(view, event_type_key=block["eventTypeKey"], key_value=key,
                                     params=params)
    return StepOutcome("done", block.get("next"), detail={"eventId": event_id})


register(BlockType("launch_event", run=run, check=check, ref_fields=("keyValue", "params")))
