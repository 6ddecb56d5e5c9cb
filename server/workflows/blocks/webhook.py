"""``webhook``: POST the run's event, params and contact as JSON with an idempotency key."""

from __future__ import annotations

from urllib.parse import urlsplit

from server.workflows.blocks.base import Block, BlockType, Say, register, text
from server.workflows.runtime import BlockRuntime, RunView, StepOutcome


def check(block: Block, say: Say) -> None:
    url = block.get("url")
    if not isinstance(url, str) or (not url.startswith("${")
                                    and urlsplit(url).scheme not in ("http", "https")):
        say("url", "is required: an http(s) URL")


async def run(block: Block, view: RunView, rt: BlockRuntime) -> StepOutcome:
    url = text(view, block["url"])
    contact = await rt.contact(view)
    payload = {"workflowId": view.workflow_id, "runId": view.run_id, "eventId": view.event_id,
               "event": view.trigger, "params": view.params,
               "contact": None if contact is None else {
                   "id": contact.contact_id, "email": contact.email, "phone": contact.phone,
                   **contact.fields}}
    key = f"wf-{view.account_id}-{view.run_id}-{view.seq}"
    delivery = await rt.post_webhook(view, block, url, payload, key)
    detail = {"url": url, "idempotencyKey": key, "status": delivery.status}
    if delivery.status != "sent":
        detail["reason"] = delivery.reason or ""
        return StepOutcome("failed", None, detail=detail)
    return StepOutcome("done", block.get("next"), detail=detail)


register(BlockType("webhook", run=run, check=check, ref_fields=("url",), external=True))
