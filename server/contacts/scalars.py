"""Primitive readers shared by every contact validator: text, integers, decimals, booleans.

Each reader takes any object (parsed JSON or Python values), returns a clean value or raises
``InvalidValue`` with a reason; none raises anything else, whatever it is given.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

from server.contacts.errors import InvalidValue

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "json_type",
    "read_bool",
    "read_decimal",
    "read_identifier",
    "read_int",
    "read_text",
]

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

# NUL and other C0 controls break PostgreSQL text columns and terminals; lone surrogates
# (which JSON "\ud800" escapes produce) cannot be encoded as UTF-8 at all.
_FORBIDDEN_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# Beyond these bounds a number is a typo or an attack, and NUMERIC columns reject it anyway.
_MAX_NUMBER_CHARS = 100
_MAX_DECIMAL_DIGITS = 38
_MAX_DECIMAL_MAGNITUDE = 38
# Identifiers (external ids, contact keys) may arrive as JSON numbers; bound them so that
# str() never meets Python's limit on huge integer conversion.
_MAX_IDENTIFIER_INT = 10**30


def read_text(value: object, *, max_chars: int) -> str | None:
    """Return ``value`` stripped, ``None`` for null or blank text; reject non-text and overlong text."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidValue(f"must be text, not {json_type(value)}")
    if _FORBIDDEN_CHARS.search(value):
        raise InvalidValue("contains control characters or broken Unicode; remove them")
    text = value.strip()
    if not text:
        return None
    if len(text) > max_chars:
        raise InvalidValue(f"is {len(text)} characters long; at most {max_chars} are allowed")
    return text


def read_identifier(value: object, *, max_chars: int) -> str | None:
    """Read an identifier sent as text or as a JSON integer; ``None`` when null or blank."""
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) >= _MAX_IDENTIFIER_INT:
            raise InvalidValue("is too large a number for an identifier; send it as text")
        value = str(value)
    return read_text(value, max_chars=max_chars)


def read_int(value: object) -> int:
    """Read a whole number from a JSON integer, an integral float or a decimal-digit string."""
    if isinstance(value, bool):
        raise InvalidValue("must be a whole number, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise InvalidValue("must be a whole number such as 42")
        return int(value)
    if isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            raise InvalidValue("must be a whole number such as 42")
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if len(text) <= _MAX_NUMBER_CHARS and _INTEGER.fullmatch(text):
            return int(text)
    raise InvalidValue("must be a whole number such as 42")


def read_decimal(value: object) -> Decimal:
    """Read a finite decimal number from a JSON number or a string such as ``"12.50"``."""
    if isinstance(value, bool):
        raise InvalidValue("must be a number, not a boolean")
    number: Decimal
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        if abs(value) >= 10**_MAX_DECIMAL_DIGITS:
            raise InvalidValue(f"has more than {_MAX_DECIMAL_DIGITS} digits")
        number = Decimal(value)
    elif isinstance(value, float):
        # repr gives the shortest text that round-trips, so 0.1 stays 0.1, not 0.1000000000000000055.
        number = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > _MAX_NUMBER_CHARS or not _DECIMAL.fullmatch(text):
            hint = " (use a dot, not a comma)" if "," in text else ""
            raise InvalidValue(f"must be a decimal number such as 12.50{hint}")
        try:
            number = Decimal(text)
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid text
            raise InvalidValue("must be a decimal number such as 12.50") from None
    else:
        raise InvalidValue(f"must be a decimal number such as 12.50, not {json_type(value)}")
    if not number.is_finite():
        raise InvalidValue("must be a finite decimal number such as 12.50")
    if number and (
        len(number.as_tuple().digits) > _MAX_DECIMAL_DIGITS
        or abs(number.adjusted()) > _MAX_DECIMAL_MAGNITUDE
    ):
        raise InvalidValue(
            f"is out of range; use at most {_MAX_DECIMAL_DIGITS} digits"
            f" and magnitudes between 1e-{_MAX_DECIMAL_MAGNITUDE} and 1e{_MAX_DECIMAL_MAGNITUDE}"
        )
    return number


def read_bool(value: object) -> bool:
    """Read a boolean; the v1 event API sends booleans as the strings ``"true"``/``"false"``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InvalidValue("must be true or false")


def json_type(value: object) -> str:
    """Name the JSON type of ``value`` for messages ("a number", "a list"...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float, Decimal)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"
