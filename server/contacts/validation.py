"""Rules for the standard contact attributes, shared by every entry point.

Each ``normalise_*`` takes any object, returns the normalised value (``None`` for null or
blank: "no value") or raises ``InvalidValue`` whose reason says how to fix it.

Decisions where eSputnik's documentation is loose:

- Names: at most 60 characters after trimming, collapsing white space and NFC
  normalisation; letters and combining marks of any alphabet, spaces, apostrophes
  (``' ’ ʼ ‘ ```), hyphens (``-`` and U+2010) and dots; at least one letter; no digits
  (a digit in a name is almost always another field typed into the wrong box).
- Phones: international numbers valid per ``phonenumbers``; a missing ``+`` is implied
  (``380501234567``, as eSputnik accepts it) and a ``00`` prefix read as ``+``; stored E.164.
- Emails: syntax only (``email-validator``, no DNS); the domain is lower-cased and the
  local part kept; compare addresses with ``email_key``, which ignores case.
- Time zones: tz-database names, matched ignoring case; ``Etc/GMT+03`` (the seed's own
  example) is read as ``Etc/GMT+3``.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
import zoneinfo
from collections.abc import Mapping
from typing import Final

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, validate_email

from server.contacts.errors import InvalidValue, describe_value
from server.contacts.langtag import canonical_case, is_well_formed
from server.contacts.scalars import read_bool, read_identifier, read_text

__all__ = [
    "NAME_MAX_CHARS",
    "email_key",
    "is_blank_external_id",
    "normalise_channel_value",
    "normalise_confirmed",
    "normalise_contact_key",
    "normalise_email",
    "normalise_external_id",
    "normalise_language_code",
    "normalise_name",
    "normalise_phone",
    "normalise_postcode",
    "normalise_region",
    "normalise_street_address",
    "normalise_time_zone",
    "normalise_town",
]

NAME_MAX_CHARS: Final = 60
IDENTIFIER_MAX_CHARS: Final = 300
_NAME_PUNCTUATION: Final = frozenset(" '’ʼ‘`-‐.")
_NAME_RULE = "use letters, spaces, apostrophes, hyphens and dots only"
# Shape check before phonenumbers: it would otherwise read letters as keypad digits.
_PHONE_SHAPE = re.compile(r"\+?[0-9][0-9 ().\-]*")
_PHONE_HINT = "not a phone number in international format such as +380501234567"
_ETC_GMT = re.compile(r"etc/gmt([+-])0*([0-9]{1,2})", re.IGNORECASE)
_TOKEN_MAX_CHARS: Final = 4096


def normalise_name(value: object) -> str | None:
    """A first or last name (see the module docstring for the rule)."""
    # The 60-character limit applies after white space is collapsed, so measure it below.
    text = read_text(value, max_chars=sys.maxsize)
    if text is None:
        return None
    name = " ".join(unicodedata.normalize("NFC", text).split())
    if len(name) > NAME_MAX_CHARS:
        raise InvalidValue(f"is {len(name)} characters long; at most {NAME_MAX_CHARS} allowed")
    wrong = sorted({char for char in name if not _allowed_in_name(char)})
    if wrong:
        shown = " ".join(describe_value(char) for char in wrong[:5])
        raise InvalidValue(f"contains {shown}; {_NAME_RULE}")
    if not any(unicodedata.category(char).startswith("L") for char in name):
        raise InvalidValue(f"has no letters; {_NAME_RULE}")
    return name


def normalise_phone(value: object) -> str | None:
    """A phone number in international format, returned as E.164 (``+380501234567``)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**20:
        value = str(value)
    text = read_text(value, max_chars=40)
    if text is None:
        return None
    if not _PHONE_SHAPE.fullmatch(text):
        raise InvalidValue(_PHONE_HINT)
    if text.startswith("00"):
        text = "+" + text[2:]
    elif not text.startswith("+"):
        text = "+" + text
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise InvalidValue(_PHONE_HINT) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidValue(f"{_PHONE_HINT} (no such number in its country's numbering plan)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(value: object) -> str | None:
    """An email address checked for syntax only; the domain comes back lower-cased."""
    text = read_text(value, max_chars=320)
    if text is None:
        return None
    return _normalised_email(text)


# A common address in plain ASCII that email-validator accepts as it is, but for the
# domain's case: letters, digits and ``_ % + -`` in dot-separated words before the @, and
# host names of letters, digits and inner single hyphens with a letters-only top level
# after it. The rest (quoted parts, rarer symbols, IDNA, ``--``) goes to email-validator.
_PLAIN_EMAIL: Final = re.compile(
    r"(?P<local>[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*)@"
    r"(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,62}\.)+[A-Za-z]{2,63})")


def _plain_email(text: str) -> str | None:
    """``text`` normalised as email-validator would, without it (~40 us a call), when it
    is a plain address; ``None``: ask email-validator."""
    if len(text) > 254:
        return None
    match = _PLAIN_EMAIL.fullmatch(text)
    if match is None or "--" in text:
        return None
    local, domain = match["local"], match["domain"].lower()
    if len(local) > 64 or len(domain) > 253:
        return None
    # email-validator's own list, read at each call as it does (callers may change it).
    if any(domain == name or domain.endswith("." + name) for name in SPECIAL_USE_DOMAIN_NAMES):
        return None
    return f"{local}@{domain}"


# The workers read the same addresses in event after event (a contact's every event).
@functools.lru_cache(maxsize=16384)
def _normalised_email(text: str) -> str:
    plain = _plain_email(text)
    if plain is not None:
        return plain
    try:
        result = validate_email(text, check_deliverability=False)
    except ValueError as error:  # EmailNotValidError, and any codec error under it
        raise InvalidValue(
            f"is not a valid email address ({error}); use name@example.com"
        ) from None
    return result.normalized


def email_key(email: str) -> str:
    """The form in which two addresses compare equal when they differ only in case."""
    return email.lower()


def normalise_language_code(value: object) -> str | None:
    """An RFC 5646 language tag such as ``uk`` or ``en-US``, recased canonically."""
    text = read_text(value, max_chars=100)
    if text is None:
        return None
    if is_well_formed(text):
        return canonical_case(text)
    hint = f" (write {text.replace('_', '-')!r} with hyphens)" if "_" in text else ""
    raise InvalidValue(f"is not an RFC 5646 language tag such as uk or en-US{hint}")


def normalise_time_zone(value: object) -> str | None:
    """A tz-database zone name such as ``Europe/Kyiv``, in its canonical spelling."""
    text = read_text(value, max_chars=64)
    if text is None:
        return None
    if match := _ETC_GMT.fullmatch(text):
        sign, hours = match.groups()
        text = f"Etc/GMT{sign}{int(hours)}"
    canonical = _time_zones().get(text.lower())
    if canonical is None:
        raise InvalidValue("is not a tz-database time zone such as Europe/Kyiv or Etc/GMT+3")
    return canonical


def is_blank_external_id(value: object) -> bool:
    """eSputnik ignores an external id of null, "", blanks or "null" (any case)."""
    if value is None:
        return True
    # str.strip() removes every Unicode white space character, not only ASCII blanks.
    return isinstance(value, str) and value.strip().lower() in ("", "null")


def normalise_external_id(value: object) -> str | None:
    """An external customer id; the blank forms eSputnik ignores give ``None``."""
    if is_blank_external_id(value):
        return None
    return read_identifier(value, max_chars=IDENTIFIER_MAX_CHARS)


def normalise_contact_key(value: object) -> str | None:
    """A contact key: text (or a JSON integer) of at most 300 characters."""
    return read_identifier(value, max_chars=IDENTIFIER_MAX_CHARS)


def normalise_region(value: object) -> str | None:
    """The region part of an address."""
    return read_text(value, max_chars=100)


def normalise_town(value: object) -> str | None:
    """The town part of an address."""
    return read_text(value, max_chars=100)


def normalise_street_address(value: object) -> str | None:
    """The street part of an address."""
    return read_text(value, max_chars=255)


def normalise_postcode(value: object) -> str | None:
    """A postcode; sent as text or as a JSON integer."""
    return read_identifier(value, max_chars=20)


def normalise_confirmed(value: object) -> bool | None:
    """The contact's confirmed flag; ``"true"``/``"false"`` strings count as booleans."""
    return None if value is None else read_bool(value)


def normalise_channel_value(value: object, *, channel_type: str) -> str:
    """The value of one API channel: an email, a phone for sms and viber, else a token."""
    if channel_type == "email":
        result = normalise_email(value)
    elif channel_type in ("sms", "viber"):
        result = normalise_phone(value)
    else:
        result = read_text(value, max_chars=_TOKEN_MAX_CHARS)
    if result is None:
        raise InvalidValue(f"is empty; a {channel_type} channel needs a value")
    return result


def _allowed_in_name(char: str) -> bool:
    return unicodedata.category(char)[0] in ("L", "M") or char in _NAME_PUNCTUATION


@functools.cache
def _time_zones() -> Mapping[str, str]:
    """Lower-cased zone name to canonical name; scanning the tz database is slow, so once."""
    return {name.lower(): name for name in zoneinfo.available_timezones()}
