"""A letter from a template: subject, HTML and text rendered against one context in the
render pool's child processes, within the limits every sent letter keeps (RFC 5322's line
for the subject, 2 MB bodies)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from server.mail.compose import Letter
from server.templating.pool import RenderPart, RenderPool

__all__ = ["MAX_BODY", "MAX_SUBJECT", "render_letter"]

MAX_SUBJECT: Final = 998
MAX_BODY: Final = 2 * 1024 * 1024


async def render_letter(renderer: RenderPool, *, account_id: int, subject: str, html: str,
                        text: str, context: Mapping[str, object], sender: str, to: str,
                        message_id: str) -> Letter:
    """Render the three parts; a ``TemplateError`` says which part failed and why."""
    subject, html, text = await renderer.render(
        [RenderPart(subject, max_output=MAX_SUBJECT * 4, timeout=2.0),
         RenderPart(html, max_output=MAX_BODY, timeout=5.0),
         RenderPart(text, max_output=MAX_BODY, timeout=5.0)], context, account_id=account_id)
    return Letter(sender=sender, to=to, subject=" ".join(subject.split())[:MAX_SUBJECT],
                  html=html, text=text, message_id=message_id)
