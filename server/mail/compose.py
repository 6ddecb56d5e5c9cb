"""Builds the wire form of one letter: multipart text + HTML with a stable Message-ID.

The Message-ID is derived from the run and step that send the letter, so a letter sent
again after a crash (between the server's acceptance and our record) carries the same id.
The bytes are written here directly (RFC 5322 headers, RFC 2047 encoded words for
non-ASCII header text; bodies 7bit, 8bit where the server takes 8BITMIME, else
quoted-printable or base64): the ``email`` package's header machinery
cost more than everything else of a letter together.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr

CRLF = b"\r\n"
# A body with a line longer than this is sent encoded (quoted-printable or base64), as
# the email package does; shorter ones as they are (7bit, or 8bit with 8BITMIME).
MAX_LINE = 78


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


def envelope(letter: Letter) -> tuple[str, str]:
    """The SMTP envelope's (sender, recipient) addresses."""
    return parseaddr(letter.sender)[1], parseaddr(letter.to)[1]


def compose(letter: Letter, *, date: datetime | None = None, eight_bit: bool = False) -> bytes:
    """The letter as sent: headers and body, CRLF line ends. ``eight_bit``: the server
    takes 8BITMIME, so UTF-8 text with short lines goes as it is (else encoded)."""
    text = letter.text if letter.text.strip() else _text_from_html(letter.html)
    head = [
        b"From: " + _address(letter.sender),
        b"To: " + _address(letter.to),
        b"Subject: " + _unstructured(letter.subject),
        b"Date: " + format_datetime(date or datetime.now(UTC)).encode(),
        b"Message-ID: " + letter.message_id.encode("ascii", "replace"),
        b"Auto-Submitted: auto-generated",
        b"MIME-Version: 1.0",
    ]
    if not letter.html.strip():
        return CRLF.join(head + _part("plain", text, eight_bit)) + CRLF
    boundary = "==eventflow-" + hashlib.blake2b(letter.message_id.encode(), digest_size=12
                                                ).hexdigest()
    head.append(f'Content-Type: multipart/alternative; boundary="{boundary}"'.encode())
    sep = b"--" + boundary.encode()
    lines = [*head, b"", sep, *_part("plain", text, eight_bit), sep,
             *_part("html", letter.html, eight_bit), sep + b"--"]
    return CRLF.join(lines) + CRLF


def needs_8bit(letter: Letter) -> bool:
    """Whether ``compose(eight_bit=True)`` sends a part unencoded that is not ASCII."""
    return not (letter.text.isascii() and letter.html.isascii())


def _part(subtype: str, body: str, eight_bit: bool) -> list[bytes]:
    raw = body.replace("\r\n", "\n").replace("\r", "\n")
    if not raw.endswith("\n"):
        raw += "\n"
    utf8 = raw.encode()
    short = all(len(line) <= MAX_LINE for line in utf8.split(b"\n"))
    if short and (eight_bit or raw.isascii()):
        cte, data = (b"7bit" if raw.isascii() else b"8bit"), utf8.rstrip(b"\n").split(b"\n")
    else:  # the shorter of the two, as the email package chooses
        qp = binascii.b2a_qp(utf8, istext=True)
        b64 = base64.encodebytes(utf8)
        cte, encoded = (b"quoted-printable", qp) if len(qp) <= len(b64) else (b"base64", b64)
        data = encoded.rstrip(b"\n").split(b"\n")
    return [f'Content-Type: text/{subtype}; charset="utf-8"'.encode(),
            b"Content-Transfer-Encoding: " + cte, b"", *data]


def _unstructured(value: str) -> bytes:
    value = " ".join(value.split())
    if value.isascii() and len(value) <= 900:
        return value.encode()
    return Header(value, "utf-8", header_name="Subject").encode(linesep="\r\n").encode()


def _address(value: str) -> bytes:
    name, addr = parseaddr(value)
    if not name:
        return (addr or value).encode("ascii", "replace")
    return formataddr((name, addr), charset="utf-8").encode("ascii", "replace")


def _text_from_html(html: str) -> str:
    """A crude plain-text part when the template has only HTML (strip tags, keep lines)."""
    import re
    from html import unescape

    text = re.sub(r"(?is)<(script|style).*?</\1>", "", html)
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</tr>|</li>", "\n", text)
    text = re.sub(r"<[^>]+>", "", text)
    lines = [line.strip() for line in unescape(text).splitlines()]
    return "\n".join(line for line in lines if line) + "\n"
