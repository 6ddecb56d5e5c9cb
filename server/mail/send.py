"""Hands a composed letter to the SMTP server with aiosmtplib and classifies failures.

``send_letter`` opens a connection for one letter; ``server.mail.pool.SmtpPool`` keeps
connections open for many; both hand it over with ``transmit`` and classify failures with
``classified``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiosmtplib

from server.mail.compose import Letter, compose, envelope, needs_8bit
from server.mail.config import SmtpConfig


class MailError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MailRejected(MailError):
    """Permanent refusal: retrying cannot help."""


class MailDeferred(MailError):
    """Temporary failure: retry later."""


@contextmanager
def classified(config: SmtpConfig) -> Iterator[None]:
    """aiosmtplib's and the network's errors as MailRejected or MailDeferred."""
    try:
        yield
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


async def send_letter(*, config: SmtpConfig, letter: Letter) -> str:
    """Send ``letter`` over a connection of its own; returns the server's answer. Raises
    MailRejected or MailDeferred."""
    with classified(config):
        async with aiosmtplib.SMTP(**connection_args(config)) as smtp:
            return await transmit(smtp, letter, config)


def connection_args(config: SmtpConfig) -> dict[str, Any]:
    return {"hostname": config.host, "port": config.port, "username": config.username,
            "password": config.password,
            "start_tls": config.starttls if config.starttls else False,
            "use_tls": config.implicit_tls, "timeout": config.timeout}


async def transmit(smtp: aiosmtplib.SMTP, letter: Letter, config: SmtpConfig) -> str:
    """One letter over an open connection, written for what the server offers (8BITMIME)."""
    if smtp.is_ehlo_or_helo_needed:
        await smtp.ehlo()
    eight_bit = smtp.supports_extension("8bitmime")
    options = ["BODY=8BITMIME"] if eight_bit and needs_8bit(letter) else []
    sender, recipient = envelope(letter)
    _errors, answer = await smtp.sendmail(sender, [recipient],
                                          compose(letter, eight_bit=eight_bit),
                                          mail_options=options, timeout=config.timeout)
    return str(answer)
