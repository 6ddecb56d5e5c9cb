"""Sending one API-sent message: checked again against suppression (an address may have
been unsubscribed since the call), rendered, and delivered through ``delivery``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

from server.errors import NotFound
from server.mail import MailDeferred, SmtpConfig
from server.mail.compose import Letter
from server.mail.pool import SmtpPool
from server.messaging.delivery import deliver_letter
from server.messaging.letters import render_letter
from server.messaging.store import MessageLog, StoredMessage, load_message
from server.messaging.suppression import address_standing, refusal
from server.templating import TemplateError, build_context
from server.templating.pool import RenderPool
from server.templating.store import get_template

__all__ = ["MessagingDeps", "SendResult", "send_message"]

FINAL: Final = ("sent", "failed")


@dataclass(frozen=True, slots=True)
class MessagingDeps:
    engine: AsyncEngine
    smtp: SmtpConfig | None
    renderer: RenderPool
    # Kept SMTP connections (else one connection per letter).
    pool: SmtpPool | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    """``sent``, ``failed``, ``gone`` (no such row) or ``retry`` (with the reason)."""

    status: str
    reason: str | None = None


async def _letter_parts(deps: MessagingDeps, message: StoredMessage) -> tuple[str, str, str]:
    if message.template_id is None:
        content = message.content
        return str(content["subject"]), str(content["html"]), str(content["text"])
    async with deps.engine.connect() as conn:
        template = await get_template(conn, account_id=message.account_id,
                                      template_id=message.template_id)
    return template.subject, template.html, template.text


async def send_message(deps: MessagingDeps, *, message_id: int, final_try: bool) -> SendResult:
    async with deps.engine.connect() as conn:
        message = await load_message(conn, message_id)
        if message is None:
            return SendResult("gone")
        if message.status in FINAL:
            return SendResult(message.status, message.reason)
        standing = await address_standing(conn, account_id=message.account_id,
                                          address=message.recipient)
    log = MessageLog(deps.engine, message.id)
    refused = refusal(standing, transactional=message.transactional,
                      allow_unconfirmed=bool(message.meta.get("allowUnconfirmed", True)))
    if refused is not None:
        await log.close(status="failed", reason=refused)
        return SendResult("failed", refused)
    try:
        subject, html, text = await _letter_parts(deps, message)
        # A template's data: the recipient's jsonParam (inline letters are sent as given).
        context = build_context(params=message.content.get("data") or {})
        letter = await render_letter(
            deps.renderer, account_id=message.account_id, subject=subject, html=html,
            text=text, context=context, sender=message.sender, to=message.recipient,
            message_id=message.message_id) \
            if message.template_id is not None else _as_given(message, subject, html, text)
    except (TemplateError, NotFound) as exc:
        why = f"template {message.template_id}: {exc}"
        await log.close(status="failed", reason=why)
        return SendResult("failed", why)
    try:
        status, reason = await deliver_letter(log=log, smtp=deps.smtp, letter=letter,
                                              pool=deps.pool)
    except MailDeferred as exc:
        if not final_try:
            return SendResult("retry", exc.reason)
        await log.close(status="failed", reason=f"gave up: {exc.reason}")
        return SendResult("failed", f"gave up: {exc.reason}")
    return SendResult(status, reason)


def _as_given(message: StoredMessage, subject: str, html: str, text: str) -> Letter:
    return Letter(sender=message.sender, to=message.recipient, subject=subject, html=html,
                  text=text, message_id=message.message_id)
