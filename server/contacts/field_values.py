"""Values of additional contact fields: checked against their definition and normalised.

Normalised forms: text, textarea and dropdown give ``str``; number ``int``; decimal
``Decimal``; date ``datetime.date``; datetime a naive ``datetime.datetime``; checkbox and tags
``tuple[str, ...]``. ``None`` (from null, blank text or an empty list) means "no value".
Every normaliser accepts its own output, so normalising twice changes nothing.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Final

from server.contacts.definitions import FieldDefinition
from server.contacts.errors import InvalidValue, describe_value
from server.contacts.scalars import (
    INT32_MAX,
    INT32_MIN,
    json_type,
    read_decimal,
    read_int,
    read_text,
)

__all__ = ["FieldValue", "normalise_field_value", "render_field_value"]

FieldValue = str | int | Decimal | date | datetime | tuple[str, ...]

TEXT_MAX_CHARS: Final = 1000
TEXTAREA_MAX_CHARS: Final = 5000
TAG_MAX_CHARS: Final = 100
MAX_TAGS: Final = 100
_DATE_FORMATS_HINT = "yyyy-MM-dd, dd/MM/yyyy, dd.MM.yy, dd.MM.yyyy or yyyy/MM/dd, e.g. 2020-11-23"
_DATETIME_HINT = "YYYY-MM-DDTHH:MM or YYYY-MM-DDTHH:MM:SS, e.g. 2020-11-23T14:30"
# Day and month may drop their leading zero: people write 5.1.2020 as often as 05.01.2020.
_YEAR_FIRST = re.compile(r"([0-9]{4})([-/])([0-9]{1,2})\2([0-9]{1,2})")
_DAY_FIRST = re.compile(r"([0-9]{1,2})([/.])([0-9]{1,2})\2([0-9]{4}|[0-9]{2})")
_DATETIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?")
# Two-digit years follow Java's SimpleDateFormat, which eSputnik runs on: the century is
# chosen so the date falls within 80 years before and 20 years after the current year.
_YEARS_AHEAD: Final = 20


def normalise_field_value(value: object, *, definition: FieldDefinition) -> FieldValue | None:
    """Check ``value`` against ``definition`` and return its normalised form."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    kind = definition.type
    if kind in ("text", "textarea"):
        limit = TEXT_MAX_CHARS if kind == "text" else TEXTAREA_MAX_CHARS
        return read_text(_scalar_as_text(value), max_chars=limit)
    if kind == "number":
        return _normalise_number(value, definition=definition)
    if kind == "decimal":
        return _check_range(read_decimal(value), definition=definition)
    if kind == "date":
        return normalise_date(value)
    if kind == "datetime":
        return normalise_datetime(value)
    if kind == "dropdown":
        return _normalise_choice(value, definition=definition)
    if kind == "checkbox":
        return _normalise_checkbox(value, definition=definition)
    return _normalise_tags(value)


def render_field_value(value: FieldValue | None) -> object:
    """The JSON form of a normalised value, as the contact API answers it."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="minutes" if value.second == 0 else "seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def normalise_date(value: object) -> date:
    """Read a date in any documented format; datetimes are rejected rather than truncated."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        text = value.strip()
        if match := _YEAR_FIRST.fullmatch(text):
            year, _, month, day = match.groups()
            return _make_date(int(year), int(month), int(day), text=text)
        if match := _DAY_FIRST.fullmatch(text):
            day, separator, month, year = match.groups()
            if len(year) == 2 and separator == ".":
                return _make_date(_full_year(int(year)), int(month), int(day), text=text)
            if len(year) == 4:
                return _make_date(int(year), int(month), int(day), text=text)
    raise InvalidValue(f"is not a date; use {_DATE_FORMATS_HINT}")


def normalise_datetime(value: object) -> datetime:
    """Read ``YYYY-MM-DDTHH:MM`` with optional seconds (a space may replace the ``T``)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None or value.microsecond:
            raise InvalidValue(f"must be a local time to the second; use {_DATETIME_HINT}")
        return value
    if isinstance(value, str) and (match := _DATETIME.fullmatch(value.strip())):
        year, month, day, hour, minute, second = (int(part) for part in match.groups("0"))
        try:
            return datetime(year, month, day, hour, minute, second)
        except ValueError:
            raise InvalidValue(f"is not a real date and time; use {_DATETIME_HINT}") from None
    raise InvalidValue(f"is not a date and time; use {_DATETIME_HINT}")


def _make_date(year: int, month: int, day: int, *, text: str) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise InvalidValue(f"is not a real calendar date ({text}); check day and month") from None


def _full_year(two_digits: int, *, this_year: int | None = None) -> int:
    current = this_year if this_year is not None else date.today().year
    year = current - current % 100 + two_digits
    if year > current + _YEARS_AHEAD:
        year -= 100
    elif year <= current + _YEARS_AHEAD - 100:
        year += 100
    return year


def _scalar_as_text(value: object) -> object:
    """JSON integers are accepted where text is expected: clients send ids and codes as numbers."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**30:
        return str(value)
    return value


def _normalise_number(value: object, *, definition: FieldDefinition) -> int:
    number = read_int(value)
    if not INT32_MIN <= number <= INT32_MAX:
        raise InvalidValue(f"is outside the 32-bit range {INT32_MIN}..{INT32_MAX}")
    _check_range(Decimal(number), definition=definition)
    return number


def _check_range(number: Decimal, *, definition: FieldDefinition) -> Decimal:
    low, high = definition.min, definition.max
    if (low is not None and number < low) or (high is not None and number > high):
        bounds = f"{'' if low is None else low}..{'' if high is None else high}"
        raise InvalidValue(f"is outside the allowed range {bounds}")
    return number


def _normalise_choice(value: object, *, definition: FieldDefinition) -> str:
    text = read_text(_scalar_as_text(value), max_chars=TEXTAREA_MAX_CHARS)
    chosen = _match_allowed(text or "", definition=definition)
    if chosen is None:
        raise InvalidValue(f"is not an allowed value; choose one of {_allowed_hint(definition)}")
    return chosen


def _normalise_checkbox(value: object, *, definition: FieldDefinition) -> tuple[str, ...] | None:
    items: list[object]
    if isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, str):
        # A whole string that is itself an allowed value wins: allowed values may hold commas.
        whole = _match_allowed(value.strip(), definition=definition)
        items = [whole] if whole is not None else list(value.split(","))
    else:
        raise InvalidValue(f"must be a list of allowed values, not {json_type(value)}")
    chosen: list[str] = []
    wrong: list[object] = []
    for item in items:
        text = _scalar_as_text(item)
        match = (
            _match_allowed(text.strip(), definition=definition) if isinstance(text, str) else None
        )
        if match is None and isinstance(text, str) and not text.strip():
            continue
        if match is None:
            wrong.append(item)
        elif match not in chosen:
            chosen.append(match)
    if wrong:
        shown = ", ".join(describe_value(item) for item in wrong[:5])
        raise InvalidValue(
            f"has values not allowed ({shown}); choose from {_allowed_hint(definition)}"
        )
    return tuple(chosen) or None


def _normalise_tags(value: object) -> tuple[str, ...] | None:
    if isinstance(value, str):
        items: list[object] = list(value.split(","))
    elif isinstance(value, (list, tuple)):
        items = [
            piece
            for item in value
            for piece in (item.split(",") if isinstance(item, str) else [item])
        ]
    else:
        raise InvalidValue(
            f"must be a list of tags or comma-separated text, not {json_type(value)}"
        )
    tags: list[str] = []
    for item in items:
        tag = read_text(_scalar_as_text(item), max_chars=TAG_MAX_CHARS)
        if tag is not None and tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise InvalidValue(f"has {len(tags)} tags; at most {MAX_TAGS} are allowed")
    return tuple(tags) or None


def _match_allowed(text: str, *, definition: FieldDefinition) -> str | None:
    """The allowed value equal to ``text``, or equal ignoring case; ``None`` if there is none."""
    if text in definition.allowed_values:
        return text
    folded = text.casefold()
    for allowed in definition.allowed_values:
        if allowed.casefold() == folded:
            return allowed
    return None


def _allowed_hint(definition: FieldDefinition) -> str:
    shown = ", ".join(describe_value(value) for value in definition.allowed_values[:10])
    more = ", …" if len(definition.allowed_values) > 10 else ""
    return f"{shown}{more}" if shown else "(none defined; add allowed values to the field)"
