"""``create_contact`` and ``update_contact``: write the contact in the step's transaction
(update skips a contact that does not exist)."""

from __future__ import annotations

from typing import Any

import orjson

from server.workflows.blocks.base import Block, BlockType, Say, register, sub, text
from server.workflows.runtime import BlockRuntime, RunView, StepFailed, StepOutcome


def check(block: Block, say: Say) -> None:
    if not any(block.get(f) for f in ("email", "phone", "json")):
        say("email", "give at least one of email, phone or json (such as \"${email}\")")


async def run(block: Block, view: RunView, rt: BlockRuntime) -> StepOutcome:
    form: dict[str, Any] = {}
    raw_json = sub(view, block.get("json")) if block.get("json") else None
    if isinstance(raw_json, str) and raw_json.strip():
        try:
            raw_json = orjson.loads(raw_json)
        except orjson.JSONDecodeError:
            raise StepFailed("json: the value is not a JSON object") from None
    if isinstance(raw_json, dict):
        form.update(raw_json)
    elif raw_json not in (None, ""):
        raise StepFailed("json: the value is not a JSON object")
    for field, key in (("email", "email"), ("phone", "sms")):
        if block.get(field):
            value = text(view, block[field])
            if value:
                form[key] = value
    create = block["type"] == "create_contact"
    contact_id = await rt.write_contact(view, create=create, form=form)
    if contact_id is None:
        return StepOutcome("skipped", block.get("next"), detail={"reason": "unknown contact"})
    return StepOutcome("done", block.get("next"), detail={"contactId": contact_id})


register(*(BlockType(name, run=run, check=check, ref_fields=("email", "phone", "json"))
           for name in ("create_contact", "update_contact")))
