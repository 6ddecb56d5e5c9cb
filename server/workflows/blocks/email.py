"""``email`` and ``transactional_email``: render a stored template and send it.

``email`` skips unsubscribed and blacklisted contacts and addresses on the account's
unsubscribed list, ``transactional_email`` only blacklisted contacts (the rule of
``messaging.suppression``, which API-sent messages follow too); a skipped letter is
recorded failed with the reason and the run goes on.
"""

from __future__ import annotations

from server.mail.compose import Letter, message_id_for
from server.messaging.suppression import AddressStanding, refusal
from server.templating import TemplateError, build_context
from server.templating.pool import RenderPart
from server.workflows.blocks.base import Block, BlockType, Say, register, text
from server.workflows.runtime import BlockRuntime, RunView, StepFailed, StepOutcome

MAX_SUBJECT = 998
MAX_BODY = 2 * 1024 * 1024


def check(block: Block, say: Say) -> None:
    tid = block.get("templateId")
    if not isinstance(tid, int) or isinstance(tid, bool) or tid <= 0:
        say("templateId", "is required: the id of a stored message template")
    if "jsonParam" in block and not isinstance(block["jsonParam"], (str, type(None))):
        say("jsonParam", "must name an event param")


async def run(block: Block, view: RunView, rt: BlockRuntime) -> StepOutcome:
    transactional = block["type"] == "transactional_email"
    to = text(view, block.get("to", "${email}"))
    contact = await rt.contact_by_email(view, to) if to else await rt.contact(view)
    if not to and contact is not None and contact.email:
        to = contact.email
    if not to or "@" not in to:
        return StepOutcome("skipped", block.get("next"),
                           detail={"reason": f"no email address to send to (to: {to!r})"})
    subject, html, body_text = await rt.template(view, int(block["templateId"]))
    try:
        ctx = build_context(params=view.params, json_param=block.get("jsonParam") or None)
        subject, html, body_text = await rt.renderer.render(
            [RenderPart(subject, max_output=MAX_SUBJECT * 4, timeout=2.0),
             RenderPart(html, max_output=MAX_BODY, timeout=5.0),
             RenderPart(body_text, max_output=MAX_BODY, timeout=5.0)], ctx,
            account_id=view.account_id)
    except TemplateError as exc:
        raise StepFailed(f"template {block['templateId']}: {exc}") from None
    standing = AddressStanding(
        blacklisted=contact is not None and contact.blacklisted,
        unsubscribed=(contact is not None and not contact.subscribed)
        or (not transactional and await rt.address_listed(view, to)))
    refused = refusal(standing, transactional=transactional)
    letter = Letter(sender=rt.sender, to=to, subject=" ".join(subject.split())[:MAX_SUBJECT],
                    html=html, text=body_text,
                    message_id=message_id_for(account_id=view.account_id, run_id=view.run_id,
                                              seq=view.seq, sender=rt.sender))
    cid = contact.contact_id if contact else view.contact_id
    delivery = await rt.deliver_email(view, block, letter, cid, refused)
    detail = {"to": to, "messageId": letter.message_id, "status": delivery.status}
    if delivery.status != "sent":
        detail["reason"] = delivery.reason or ""
        return StepOutcome("skipped" if refused else "failed",
                           block.get("next") if refused else None, detail=detail)
    return StepOutcome("done", block.get("next"), detail=detail)


# The blocks that send a stored template (``templateId``; the store checks it names one).
EMAIL_BLOCKS = ("email", "transactional_email")

register(*(BlockType(name, run=run, check=check, ref_fields=("to",), external=True)
           for name in EMAIL_BLOCKS))
