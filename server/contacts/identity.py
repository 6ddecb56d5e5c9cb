"""Which contact an event belongs to, read from the event's params (reference section 2).

Identifier names match ignoring case: ``contactId``/``Contact_id``; ``externalCustomerId``;
``Email``/``EmailAddress``/``UserEmail``/``ContactEmail``; ``Phone``/``SMS``/``PhoneNumber``;
``PushToken``/``MobPushToken``; ``ContactKey``/``Contact_key``. When a kind appears under
several names, the first usable param wins (a blank or invalid one is skipped and reported
in ``invalid``). Lookup priority: contact id, external id, email, phone,
push token, then (our addition, being unique too) contact key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from server.contacts import validation
from server.contacts.builder import read_positive_id
from server.contacts.errors import InvalidValue, Violation, describe_value
from server.contacts.scalars import read_identifier

__all__ = ["LOOKUP_PRIORITY", "IdentifierKind", "Identifiers", "identifiers_from_params"]

IdentifierKind = Literal[
    "contact_id", "external_customer_id", "email", "phone", "push_token", "contact_key"
]
LOOKUP_PRIORITY: Final[tuple[IdentifierKind, ...]] = (
    "contact_id",
    "external_customer_id",
    "email",
    "phone",
    "push_token",
    "contact_key",
)
_NAMES: Final[Mapping[str, IdentifierKind]] = {
    "contactid": "contact_id",
    "contact_id": "contact_id",
    "externalcustomerid": "external_customer_id",
    "email": "email",
    "emailaddress": "email",
    "useremail": "email",
    "contactemail": "email",
    "phone": "phone",
    "sms": "phone",
    "phonenumber": "phone",
    "pushtoken": "push_token",
    "mobpushtoken": "push_token",
    "contactkey": "contact_key",
    "contact_key": "contact_key",
}
_READERS: Final[Mapping[IdentifierKind, Callable[[object], object]]] = {
    "contact_id": read_positive_id,
    "external_customer_id": validation.normalise_external_id,
    "email": validation.normalise_email,
    "phone": validation.normalise_phone,
    "push_token": lambda value: read_identifier(value, max_chars=4096),
    "contact_key": validation.normalise_contact_key,
}
# The event's keyValue falls back to these, in this order, when it is not given.
_KEY_VALUE_KINDS: Final = LOOKUP_PRIORITY[:5]


@dataclass(frozen=True, kw_only=True)
class Identifiers:
    """Normalised contact identifiers of one event; ``invalid`` holds those that failed."""

    contact_id: int | None = None
    external_customer_id: str | None = None
    email: str | None = None
    phone: str | None = None
    push_token: str | None = None
    contact_key: str | None = None
    invalid: tuple[Violation, ...] = ()

    def lookup_order(self) -> list[tuple[IdentifierKind, int | str]]:
        """The identifiers present, highest priority first; compare emails with ``email_key``."""
        found: list[tuple[IdentifierKind, int | str]] = []
        for kind in LOOKUP_PRIORITY:
            value = getattr(self, kind)
            if value is not None:
                found.append((kind, value))
        return found

    def key_value(self) -> str | None:
        """The event key to use when ``keyValue`` is missing, per eSputnik's fallback order."""
        for kind, value in self.lookup_order():
            if kind in _KEY_VALUE_KINDS:
                return str(value)
        return None


def identifiers_from_params(params: Sequence[tuple[str, object]]) -> Identifiers:
    """Read identifiers from ``(name, value)`` params; blank external ids count as absent."""
    values: dict[str, object] = {}
    invalid: list[Violation] = []
    for index, (name, value) in enumerate(params):
        kind = _NAMES.get(name.lower()) if isinstance(name, str) else None
        if kind is None or kind in values:
            continue
        try:
            normalised = _READERS[kind](value)
        except InvalidValue as error:
            path = f"params[{index}].value"
            message = f"{path} {describe_value(value)}: {error.reason}"
            invalid.append(Violation(field=path, value=value, message=message))
            continue
        if normalised is not None:
            values[kind] = normalised
    contact_id = values.get("contact_id")
    return Identifiers(
        contact_id=contact_id if isinstance(contact_id, int) else None,
        external_customer_id=_text(values.get("external_customer_id")),
        email=_text(values.get("email")),
        phone=_text(values.get("phone")),
        push_token=_text(values.get("push_token")),
        contact_key=_text(values.get("contact_key")),
        invalid=tuple(invalid),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
