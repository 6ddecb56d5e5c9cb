"""Hands a composed letter to the SMTP server with aiosmtplib and classifies failures."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import parseaddr

import aiosmtplib

from server.mail.config import SmtpConfig


class MailError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MailRejected(MailError):
    """Permanent refusal: retrying cannot help."""


class MailDeferred(MailError):
    """Temporary failure: retry later."""


async def send_letter(*, config: SmtpConfig, message: EmailMessage) -> str:
    """Send ``message``; returns the server's answer. Raises MailRejected or MailDeferred."""
    sender = parseaddr(str(message["From"]))[1]
    recipient = parseaddr(str(message["To"]))[1]
    try:
        _errors, answer = await aiosmtplib.send(
            message, sender=sender, recipients=[recipient], hostname=config.host,
            port=config.port, username=config.username, password=config.password,
            start_tls=config.starttls if config.starttls else False,
            use_tls=config.implicit_tls, timeout=config.timeout)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        refusals = [r for r in exc.recipients]
        codes = [r.code for r in refusals]
        reason = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in refusals)
        if codes and all(400 <= c < 500 for c in codes):
            raise MailDeferred(f"recipient deferred: {reason}") from None
        raise MailRejected(f"recipient refused: {reason}") from None
    except aiosmtplib.SMTPResponseException as exc:
        if 500 <= exc.code < 600:
            raise MailRejected(f"SMTP {exc.code} {exc.message}") from None
        raise MailDeferred(f"SMTP {exc.code} {exc.message}") from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise MailDeferred(f"cannot reach the SMTP server {config.host}:{config.port}: "
                           f"{type(exc).__name__}: {exc}") from None
    return str(answer)
