"""Email delivery: SMTP settings from a URL, MIME composition, sending with aiosmtplib,
and the development SMTP sink that ``make run`` starts (``python -m server.mail``).

Errors (``server.mail.send``)::

    MailError           a message could not be handed to the SMTP server
    ├── MailRejected    the server refused it for good (5xx, bad address): do not retry
    └── MailDeferred    connection failure, timeout or 4xx: retry later
"""

from server.mail.compose import Letter, compose, message_id_for
from server.mail.config import SmtpConfig
from server.mail.send import MailDeferred, MailError, MailRejected, send_letter

__all__ = [
    "Letter",
    "MailDeferred",
    "MailError",
    "MailRejected",
    "SmtpConfig",
    "compose",
    "message_id_for",
    "send_letter",
]
