"""A stored contact as read back (``ContactRecord``) and the mapping between ``ContactData``
and the columns of ``contacts``, shared by the single-contact and bulk stores.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson

from server.contacts.definitions import FieldDefinition
from server.contacts.field_values import FieldValue, render_field_value
from server.contacts.identity import Identifiers
from server.contacts.model import ALL_ATTRIBUTES, Address, Channel, ContactData
from server.contacts.validation import email_key
from server.db.models import as_utc
from server.errors import ContactValidationError, Violation

__all__ = [
    "CONTACT_STATUSES",
    "ContactRecord",
    "check_required_fields",
    "contact_columns",
    "contact_params",
    "field_value_text",
    "identifiers_of",
    "record_from_row",
]

CONTACT_STATUSES: Final = ("active", "unsubscribed", "blacklisted")
# ContactData attribute -> contacts column, for the attributes kept in that table.
_COLUMNS: Final[Mapping[str, str]] = {
    "first_name": "first_name",
    "last_name": "last_name",
    "email": "email",
    "phone": "phone",
    "external_customer_id": "external_customer_id",
    "contact_key": "contact_key",
    "language_code": "language_code",
    "time_zone": "time_zone",
    "address.region": "region",
    "address.town": "town",
    "address.address": "address",
    "address.postcode": "postcode",
    "confirmed": "confirmed",
}


@dataclass(frozen=True, kw_only=True)
class ContactRecord:
    """A stored contact: ``data`` has every attribute present; ``status`` is one of
    ``CONTACT_STATUSES``; ``source`` says what created it ("api", "bulk", "event"...)."""

    id: int
    account_id: int
    data: ContactData
    status: str
    source: str
    created_at: datetime
    updated_at: datetime

    @property
    def email(self) -> str | None:
        return self.data.email

    @property
    def phone(self) -> str | None:
        return self.data.phone

    @property
    def time_zone(self) -> str | None:
        return self.data.time_zone

    @property
    def language_code(self) -> str | None:
        return self.data.language_code

    @property
    def first_name(self) -> str | None:
        return self.data.first_name

    @property
    def last_name(self) -> str | None:
        return self.data.last_name

    @property
    def external_customer_id(self) -> str | None:
        return self.data.external_customer_id

    @property
    def push_tokens(self) -> tuple[str, ...]:
        return self.data.push_tokens

    @property
    def fields(self) -> Mapping[int, FieldValue | None]:
        return self.data.fields

    def to_api_dict(self) -> dict[str, object]:
        """The ``GET /api/v1/contact/{id}`` answer: the API form plus status and times."""
        body = self.data.to_api_dict()
        body["status"] = self.status
        body["createdAt"] = _iso(self.created_at)
        body["updatedAt"] = _iso(self.updated_at)
        return body


def contact_columns(data: ContactData, *, every: bool) -> dict[str, Any]:
    """Column values of ``data``: its present attributes, or all of them if ``every``."""
    values: dict[str, Any] = {}
    for attribute, column in _COLUMNS.items():
        if every or attribute in data.present:
            values[column] = _attribute(data, attribute)
    if every or "email" in data.present:
        values["email_key"] = None if data.email is None else email_key(data.email)
    if every or "other_channels" in data.present:
        others = [{"type": c.type, "value": c.value} for c in data.other_channels]
        values["other_channels"] = orjson.dumps(others).decode() if others else None
    return values


def field_value_text(value: FieldValue) -> str:
    """The stored text of a normalised field value: its API rendering as JSON."""
    return orjson.dumps(render_field_value(value)).decode()


def contact_params(contact_id: int, data: ContactData) -> list[tuple[str, Any]]:
    """The params of an event emitted about a contact (a subscription, an import's new
    contact): its id, the identifiers and names it has."""
    params: list[tuple[str, Any]] = [("contactId", contact_id)]
    for name, value in (("email", data.email), ("phone", data.phone),
                        ("externalCustomerId", data.external_customer_id),
                        ("firstName", data.first_name), ("lastName", data.last_name)):
        if value is not None:
            params.append((name, value))
    return params


def identifiers_of(data: ContactData) -> Identifiers:
    """The identifiers a contact change carries, for finding its stored contact."""
    return Identifiers(
        contact_id=data.contact_id,
        external_customer_id=data.external_customer_id,
        email=data.email,
        phone=data.phone,
        push_token=data.push_tokens[0] if data.push_tokens else None,
        contact_key=data.contact_key,
    )


def record_from_row(
    row: Any, *, push_tokens: Iterable[str], field_values: Mapping[int, str]
) -> ContactRecord:
    """Build a record from a ``contacts`` row plus its tokens and stored field texts."""
    others = orjson.loads(row.other_channels) if row.other_channels else []
    fields: dict[int, FieldValue | None] = {}
    for field_id, text in field_values.items():
        value = orjson.loads(text)
        fields[field_id] = tuple(value) if isinstance(value, list) else value
    data = ContactData(
        contact_id=int(row.id),
        first_name=row.first_name,
        last_name=row.last_name,
        email=row.email,
        phone=row.phone,
        push_tokens=tuple(push_tokens),
        other_channels=tuple(Channel(type=c["type"], value=c["value"]) for c in others),
        external_customer_id=row.external_customer_id,
        contact_key=row.contact_key,
        language_code=row.language_code,
        time_zone=row.time_zone,
        address=Address(region=row.region, town=row.town, address=row.address,
                        postcode=row.postcode),
        confirmed=row.confirmed if row.confirmed is None else bool(row.confirmed),
        fields=fields,
        present=ALL_ATTRIBUTES,
    )
    return ContactRecord(
        id=int(row.id), account_id=int(row.account_id), data=data, status=row.status,
        source=row.source, created_at=as_utc(row.created_at), updated_at=as_utc(row.updated_at),
    )


def _attribute(data: ContactData, attribute: str) -> Any:
    if attribute.startswith("address."):
        return getattr(data.address, attribute.removeprefix("address."))
    return getattr(data, attribute)


def _iso(moment: datetime) -> str:
    return as_utc(moment).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def check_required_fields(data: ContactData, *, fields: Mapping[int, FieldDefinition]) -> None:
    """A new contact must carry every required field; else ``ContactValidationError``."""
    missing = [
        Violation(field="fields", message=f'lacks required field {field_id} '
                  f'"{definition.name}"; a new contact must have it')
        for field_id, definition in sorted(fields.items())
        if definition.required and data.fields.get(field_id) is None
    ]
    if missing:
        raise ContactValidationError(missing)
