"""``${name}`` references in block fields: syntax check on save, substitution at run time.

``${name}`` reads the trigger event's param ``name``; ``${key}`` is the event's key value.
A field that is exactly one reference keeps the param's JSON value (an object stays an
object, as ``${json}`` needs); inside longer text, values are written as text (JSON for
objects and lists). A missing param reads as empty.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

_REF = re.compile(r"\$\{([^{}\s$]+)\}")
_NAME = re.compile(r"[^{}\s$]+")


def check_refs(text: str) -> str | None:
    """Why ``text`` has bad ``${}`` syntax, or None when it is fine."""
    pos = 0
    while True:
        start = text.find("${", pos)
        if start < 0:
            return None
        end = text.find("}", start + 2)
        if end < 0:
            return f"'${{' at character {start + 1} is never closed with '}}'"
        name = text[start + 2:end]
        if not name:
            return f"empty reference '${{}}' at character {start + 1}"
        if not _NAME.fullmatch(name):
            return (f"reference '${{{name}}}' at character {start + 1} is not a param name "
                    "(no spaces, '$', '{' or '}')")
        pos = end + 1


def lookup(name: str, *, params: Mapping[str, Any], key_value: str) -> Any:
    if name == "key":
        return key_value
    return params.get(name)


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return str(value)
    return orjson.dumps(value).decode()


def substitute(value: Any, *, params: Mapping[str, Any], key_value: str) -> Any:
    """``value`` with every reference replaced; lists and objects are walked."""
    if isinstance(value, str):
        whole = _REF.fullmatch(value)
        if whole:
            return lookup(whole.group(1), params=params, key_value=key_value)
        return _REF.sub(lambda m: as_text(lookup(m.group(1), params=params,
                                                 key_value=key_value)), value)
    if isinstance(value, list):
        return [substitute(v, params=params, key_value=key_value) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, params=params, key_value=key_value) for k, v in value.items()}
    return value


def text_of(value: Any, *, params: Mapping[str, Any], key_value: str) -> str:
    """Substitute and flatten to text (recipients, URLs, keys)."""
    return as_text(substitute(value, params=params, key_value=key_value)).strip()
