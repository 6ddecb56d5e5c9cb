"""Well-formedness of RFC 5646 language tags (``uk``, ``en-US``, ``zh-Hant-TW``).

The pattern is the RFC's ABNF (section 2.1) written as one regular expression; it checks
form, not registry membership, so ``xx-XX`` passes. Case follows the RFC's conventions:
language lower case, script title case, region upper case, everything else lower case.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["canonical_case", "is_well_formed"]

_ALNUM = "[a-z0-9]"
_LANGUAGE = r"(?:[a-z]{2,3}(?:-[a-z]{3}){0,3}|[a-z]{4}|[a-z]{5,8})"
_SCRIPT = r"[a-z]{4}"
_REGION = r"(?:[a-z]{2}|[0-9]{3})"
_VARIANT = rf"(?:{_ALNUM}{{5,8}}|[0-9]{_ALNUM}{{3}})"
_EXTENSION = rf"(?:[0-9a-wy-z](?:-{_ALNUM}{{2,8}})+)"
_PRIVATE_USE = rf"(?:x(?:-{_ALNUM}{{1,8}})+)"
_LANGTAG = (
    rf"{_LANGUAGE}(?:-{_SCRIPT})?(?:-{_REGION})?(?:-{_VARIANT})*"
    rf"(?:-{_EXTENSION})*(?:-{_PRIVATE_USE})?"
)
_IRREGULAR = (
    "en-gb-oed|i-ami|i-bnn|i-default|i-enochian|i-hak|i-klingon|i-lux|i-mingo|i-navajo"
    "|i-pwn|i-tao|i-tay|i-tsu|sgn-be-fr|sgn-be-nl|sgn-ch-de"
)
_REGULAR = "art-lojban|cel-gaulish|no-bok|no-nyn|zh-guoyu|zh-hakka|zh-min|zh-min-nan|zh-xiang"
_LANGUAGE_TAG: Final = re.compile(
    rf"{_LANGTAG}|{_PRIVATE_USE}|{_IRREGULAR}|{_REGULAR}", re.IGNORECASE | re.ASCII
)
# No registered tag comes near this; the bound keeps matching cheap on hostile input.
MAX_TAG_CHARS: Final = 100


def is_well_formed(tag: str) -> bool:
    """Whether ``tag`` matches the RFC 5646 ``Language-Tag`` production."""
    return len(tag) <= MAX_TAG_CHARS and _LANGUAGE_TAG.fullmatch(tag) is not None


def canonical_case(tag: str) -> str:
    """Recase a well-formed tag: ``EN-us`` becomes ``en-US``, ``zh-hant`` becomes ``zh-Hant``."""
    subtags = tag.split("-")
    cased = [subtags[0].lower()]
    # After a singleton (extension or private use) subtags keep lower case, per RFC 5646 2.1.1.
    after_singleton = len(subtags[0]) == 1
    for subtag in subtags[1:]:
        if after_singleton or len(subtag) == 1:
            after_singleton = True
            cased.append(subtag.lower())
        elif len(subtag) == 2:
            cased.append(subtag.upper())
        elif len(subtag) == 4 and subtag.isalpha():
            cased.append(subtag.title())
        else:
            cased.append(subtag.lower())
    return "-".join(cased)
