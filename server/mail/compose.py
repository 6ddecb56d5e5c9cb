"""Builds the MIME message of one letter: multipart text + HTML with a stable Message-ID.

The Message-ID is derived from the run and step that send the letter, so a letter sent
again after a crash (between the server's acceptance and our record) carries the same id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr


@dataclass(frozen=True, slots=True)
class Letter:
    sender: str
    to: str
    subject: str
    html: str
    text: str
    message_id: str


def message_id_for(*, account_id: int, run_id: int, seq: int, sender: str) -> str:
    """``<wf.A.R.S@domain>`` with the sender's domain; the same for every try of a step."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "eventflow.local"
    return f"<wf.{account_id}.{run_id}.{seq}@{domain}>"


def compose(letter: Letter, *, date: datetime | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = letter.sender
    msg["To"] = letter.to
    msg["Subject"] = letter.subject
    msg["Date"] = format_datetime(date or datetime.now(UTC))
    msg["Message-ID"] = letter.message_id
    msg["Auto-Submitted"] = "auto-generated"
    text = letter.text if letter.text.strip() else _text_from_html(letter.html)
    msg.set_content(text, subtype="plain", charset="utf-8")
    if letter.html.strip():
        msg.add_alternative(letter.html, subtype="html", charset="utf-8")
    return msg


def _text_from_html(html: str) -> str:
    """A crude plain-text part when the template has only HTML (strip tags, keep lines)."""
    import re
    from html import unescape

    text = re.sub(r"(?is)<(script|style).*?</\1>", "", html)
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</tr>|</li>", "\n", text)
    text = re.sub(r"<[^>]+>", "", text)
    lines = [line.strip() for line in unescape(text).splitlines()]
    return "\n".join(line for line in lines if line) + "\n"
