"""The one way a letter leaves: record the attempt, hand it to SMTP, record the outcome.

Workflows' Email blocks and API-sent messages both call ``deliver_letter`` with a
``DeliveryLog`` over their own record. A record already ``sent`` or ``failed`` is the
answer (a retried step or job sends nothing twice); a temporary SMTP failure is recorded
``queued`` and raised as ``MailDeferred`` for the caller's retry.
"""

from __future__ import annotations

from typing import Protocol

from server.mail import MailDeferred, MailRejected, SmtpConfig, send_letter
from server.mail.compose import Letter
from server.mail.pool import SmtpPool

__all__ = ["DeliveryLog", "Outcome", "deliver_letter"]


class Outcome(Protocol):
    status: str
    reason: str | None


class DeliveryLog(Protocol):
    """One letter's record: ``open`` writes it (returning an earlier final outcome, or
    ``None`` to go on); ``close`` records ``sent``, ``failed`` or ``queued`` again."""

    async def open(self) -> tuple[str, str | None] | None: ...

    async def close(self, *, status: str, reason: str | None = None) -> None: ...


async def deliver_letter(*, log: DeliveryLog, smtp: SmtpConfig | None, letter: Letter,
                         pool: SmtpPool | None = None) -> tuple[str, str | None]:
    """``("sent", None)`` or ``("failed", reason)``; raises ``MailDeferred`` to retry.
    With ``pool`` the letter goes over one of its kept connections."""
    earlier = await log.open()
    if earlier is not None:
        return earlier
    if smtp is None:
        raise MailDeferred("EVENTFLOW_SMTP_URL is not set: no SMTP server to send through")
    try:
        if pool is not None:
            await pool.send(config=smtp, letter=letter)
        else:
            await send_letter(config=smtp, letter=letter)
    except MailRejected as exc:
        await log.close(status="failed", reason=exc.reason)
        return "failed", exc.reason
    except MailDeferred as exc:
        await log.close(status="queued", reason=exc.reason)
        raise
    await log.close(status="sent")
    return "sent", None
