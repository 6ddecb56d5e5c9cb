"""The two API calls that send email, read and checked before anything is stored.

``message/{id}/smartsend``: ``{"recipients": [{"contactId" | "locator", "jsonParam",
"languageCode", "externalRequestId", "email"}], "email": true, "fromName",
"allowUnconfirmed", "campaignId", "externalRequestId", "tags"}``; ``message/email``:
``{"from", "subject", "htmlText", "plainText", "emails", "tags", "campaignId",
"externalRequestId", "skipPersonalisation"}``. Both also take our ``obligatory``: send as
a transactional email. Members kept but not acted on (campaign ids, tags, language
codes) are stored with each message, so nothing sent is lost. Older clients' forms are read
too: a recipient's ``"email"`` holding the address itself, and ``recipients`` as one object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.utils import formataddr, parseaddr
from typing import Any, Final

import orjson

from server.contacts.errors import InvalidValue
from server.contacts.scalars import json_type, read_text
from server.contacts.validation import normalise_email
from server.errors import InvalidArgument, Violation
from server.members import only_members

__all__ = [
    "MAX_RECIPIENTS",
    "InlineEmail",
    "Recipient",
    "SmartSend",
    "parse_email",
    "parse_smartsend",
    "sender_with_name",
]

MAX_RECIPIENTS: Final = 1000
SMARTSEND_MEMBERS: Final = ("recipients", "email", "fromName", "externalRequestId",
                            "allowUnconfirmed", "campaignId", "tags", "obligatory")
RECIPIENT_MEMBERS: Final = ("contactId", "locator", "jsonParam", "languageCode",
                            "externalRequestId", "email")
EMAIL_MEMBERS: Final = ("from", "subject", "htmlText", "plainText", "emails", "tags",
                        "campaignId", "externalRequestId", "skipPersonalisation", "obligatory")
_META: Final = ("campaignId", "externalRequestId", "tags", "languageCode", "skipPersonalisation")


@dataclass(frozen=True, slots=True)
class Recipient:
    contact_id: int | None
    address: str | None
    data: dict[str, Any] | None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SmartSend:
    recipients: list[Recipient]
    from_name: str | None
    transactional: bool
    allow_unconfirmed: bool


@dataclass(frozen=True, slots=True)
class InlineEmail:
    sender: str | None
    subject: str
    html: str
    text: str
    addresses: list[str]
    transactional: bool
    meta: dict[str, Any]


class _Problems(list[Violation]):
    def check(self, ok: bool, where: str, message: str) -> bool:
        if not ok:
            self.append(Violation(where, message))
        return ok

    def raise_any(self) -> None:
        if self:
            raise InvalidArgument.from_violations(list(self))


def _bool(doc: dict[str, Any], name: str, problems: _Problems, default: bool) -> bool:
    value = doc.get(name)
    if value is None:
        return default
    problems.check(isinstance(value, bool), name, "must be true or false")
    return value is True


def _meta(doc: dict[str, Any], problems: _Problems, where: str = "") -> dict[str, Any]:
    out = {name: doc[name] for name in _META if doc.get(name) is not None}
    tags = out.get("tags")
    if tags is not None:
        problems.check(isinstance(tags, list) and all(isinstance(t, str) for t in tags),
                       f"{where}tags", "must be a list of strings")
    for name in ("campaignId", "externalRequestId", "languageCode"):
        if name in out:
            problems.check(isinstance(out[name], (str, int)) and not isinstance(
                out[name], bool), f"{where}{name}", "must be text or a number")
    return out


def _address(value: object, where: str, problems: _Problems) -> str | None:
    try:
        address = normalise_email(value)
    except InvalidValue as error:
        problems.append(Violation(where, f"{value!r}: {error.reason}"))
        return None
    problems.check(address is not None, where, "is required: an email address")
    return address


def _data(value: object, where: str, problems: _Problems) -> dict[str, Any] | None:
    """jsonParam: the template's ``data``, a JSON object given as text (or as an object)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            problems.append(Violation(where, "is not valid JSON (Wrong Format)"))
            return None
    if not isinstance(value, dict):
        problems.append(Violation(where, f"must hold a JSON object, not {json_type(value)}"))
        return None
    return value


def _recipient(entry: object, index: int, problems: _Problems) -> Recipient | None:
    where = f"recipients[{index}]"
    try:
        doc = only_members(entry, RECIPIENT_MEMBERS, where=where)
    except InvalidArgument as error:
        problems.extend(error.violations)
        return None
    contact_id = doc.get("contactId")
    if isinstance(contact_id, str) and contact_id.strip().isdigit():
        contact_id = int(contact_id)
    if contact_id is not None and (not isinstance(contact_id, int) or isinstance(
            contact_id, bool) or contact_id <= 0):
        problems.append(Violation(f"{where}.contactId", "must be a positive number"))
        contact_id = None
    address = None
    # Older clients give the address as "email" (eSputnik's earlier form); newer ones send
    # "email": true beside a locator.
    given = doc.get("email")
    if isinstance(given, str):
        address = _address(given, f"{where}.email", problems)
        if doc.get("locator") is not None and address is not None and _address(
                doc["locator"], f"{where}.locator", problems) != address:
            problems.append(Violation(f"{where}.email", "names another address than locator"))
    elif doc.get("locator") is not None:
        address = _address(doc["locator"], f"{where}.locator", problems)
    if address is None and contact_id is None and not isinstance(given, str):
        problems.append(Violation(where, "needs a locator (the address) or a contactId"))
    problems.check(given is None or given is True or isinstance(given, str), f"{where}.email",
                   "only email messages can be sent here (email: true, or the address)")
    return Recipient(contact_id=contact_id, address=address,
                     data=_data(doc.get("jsonParam"), f"{where}.jsonParam", problems),
                     meta=_meta(doc, problems, f"{where}."))


def parse_smartsend(raw: object) -> SmartSend:
    problems = _Problems()
    doc = only_members(raw, SMARTSEND_MEMBERS)
    entries = doc.get("recipients")
    if isinstance(entries, dict):  # one recipient given as an object, as some clients do
        entries = [entries]
    if not isinstance(entries, list) or not entries:
        raise InvalidArgument.from_violations([Violation(
            "recipients", 'is required: [{"locator": "user@example.com", "jsonParam": "{}"}]')])
    if len(entries) > MAX_RECIPIENTS:
        raise InvalidArgument.from_violations([Violation(
            "recipients", f"holds {len(entries)}; send at most {MAX_RECIPIENTS} per call")])
    problems.check(doc.get("email") in (None, True), "email",
                   "only email messages can be sent (email: true)")
    from_name = None
    try:
        from_name = read_text(doc.get("fromName"), max_chars=100)
    except InvalidValue as error:
        problems.append(Violation("fromName", error.reason))
    transactional = _bool(doc, "obligatory", problems, False)
    allow = _bool(doc, "allowUnconfirmed", problems, False)
    shared = _meta(doc, problems)
    recipients = [_recipient(e, i, problems) for i, e in enumerate(entries)]
    problems.raise_any()
    return SmartSend(recipients=[Recipient(contact_id=r.contact_id, address=r.address,
                                           data=r.data, meta={**shared, **r.meta})
                                 for r in recipients if r is not None],
                     from_name=from_name, transactional=transactional, allow_unconfirmed=allow)


def _text(doc: dict[str, Any], name: str, problems: _Problems, limit: int) -> str:
    value = doc.get(name)
    if value is None:
        return ""
    if not problems.check(isinstance(value, str), name, "must be text"):
        return ""
    problems.check(len(value) <= limit, name, f"is longer than {limit} characters")
    return str(value)


def parse_email(raw: object) -> InlineEmail:
    problems = _Problems()
    doc = only_members(raw, EMAIL_MEMBERS)
    entries = doc.get("emails")
    if not isinstance(entries, list) or not entries:
        raise InvalidArgument.from_violations([Violation(
            "emails", 'is required: a list of addresses, ["user@example.com"]')])
    if len(entries) > MAX_RECIPIENTS:
        raise InvalidArgument.from_violations([Violation(
            "emails", f"holds {len(entries)}; send at most {MAX_RECIPIENTS} per call")])
    addresses = [a for i, e in enumerate(entries)
                 if (a := _address(e, f"emails[{i}]", problems)) is not None]
    subject = _text(doc, "subject", problems, 998)
    problems.check(bool(subject.strip()), "subject", "is required")
    html = _text(doc, "htmlText", problems, 2 * 1024 * 1024)
    text = _text(doc, "plainText", problems, 2 * 1024 * 1024)
    problems.check(bool(html.strip() or text.strip()), "htmlText",
                   "is required (or plainText): the letter needs a body")
    sender = None
    if doc.get("from") is not None:
        name, address = parseaddr(str(doc["from"]))
        checked = _address(address, "from", problems) if isinstance(doc["from"], str) else None
        problems.check(isinstance(doc["from"], str), "from", "must be text")
        sender = formataddr((name, checked)) if checked else None
    transactional = _bool(doc, "obligatory", problems, False)
    meta = _meta(doc, problems)
    problems.raise_any()
    return InlineEmail(sender=sender, subject=subject, html=html, text=text,
                       addresses=addresses, transactional=transactional, meta=meta)


def sender_with_name(default_sender: str, from_name: str | None) -> str:
    """The configured sender address under the caller's display name, if it gave one."""
    if not from_name:
        return default_sender
    return formataddr((from_name, parseaddr(default_sender)[1]))
