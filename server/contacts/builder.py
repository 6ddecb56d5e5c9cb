"""Assembles a ``ContactData`` from raw values, whichever wire form they came in.

The form parsers walk their JSON and hand each raw value here with its path; the builder
normalises it, records every violation and, only if there were none, returns the contact.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from server.contacts import validation
from server.contacts.definitions import FieldDefinition
from server.contacts.errors import InvalidValue, ViolationCollector
from server.contacts.field_values import FieldValue, normalise_field_value
from server.contacts.model import (
    CHANNEL_ATTRIBUTES,
    CHANNEL_TYPES,
    Address,
    Channel,
    ChannelType,
    ContactData,
)
from server.contacts.scalars import read_int

__all__ = ["ContactBuilder", "read_positive_id"]

_NORMALISERS: Final[Mapping[str, Callable[[object], object]]] = {
    "first_name": validation.normalise_name,
    "last_name": validation.normalise_name,
    "email": validation.normalise_email,
    "phone": validation.normalise_phone,
    "external_customer_id": validation.normalise_external_id,
    "contact_key": validation.normalise_contact_key,
    "language_code": validation.normalise_language_code,
    "time_zone": validation.normalise_time_zone,
    "address.region": validation.normalise_region,
    "address.town": validation.normalise_town,
    "address.address": validation.normalise_street_address,
    "address.postcode": validation.normalise_postcode,
    "confirmed": validation.normalise_confirmed,
}
MAX_CHANNELS_PER_TYPE: Final = 2


def read_positive_id(value: object) -> int:
    """A contact or field id: a whole number from 1 up, as a JSON number or digit string."""
    number = read_int(value)
    if not 1 <= number <= 2**63 - 1:
        raise InvalidValue("must be a positive whole number such as 10001")
    return number


class ContactBuilder:
    """Collects normalised attributes, channels and field values for one contact."""

    def __init__(
        self, *, fields: Mapping[int, FieldDefinition], collector: ViolationCollector
    ) -> None:
        self._definitions = fields
        self._collector = collector
        self._values: dict[str, object] = {}
        self._present: set[str] = set()
        self._channels: list[Channel] = []
        self._fields: dict[int, FieldValue | None] = {}
        self._contact_id: int | None = None

    def contact_id(self, *, path: str, value: object) -> None:
        """The contact's own id (API form ``id``); null means none given."""
        if value is not None:
            self._contact_id = self._collector.read(path=path, value=value, reader=read_positive_id)

    def attribute(self, name: str, *, path: str, value: object) -> None:
        """A standard attribute by model name (``first_name``, ``address.town``...)."""
        self._values[name] = self._collector.read(path=path, value=value, reader=_NORMALISERS[name])
        self._present.add(name)

    def channels_given(self) -> None:
        """Mark every channel attribute as given: a ``channels`` list replaces them all."""
        self._present.update(CHANNEL_ATTRIBUTES)

    def channel(self, *, path: str, channel_type: object, value: object) -> None:
        """One ``{type, value}`` entry of the API form's ``channels``."""
        kind = self._collector.read(path=f"{path}.type", value=channel_type, reader=_channel_type)
        if kind is None:
            return
        if sum(channel.type == kind for channel in self._channels) >= MAX_CHANNELS_PER_TYPE:
            reason = f"is a third {kind} channel; a contact has at most {MAX_CHANNELS_PER_TYPE}"
            self._collector.add(path=f"{path}.type", value=channel_type, reason=reason)
            return
        text = self._collector.read(
            path=f"{path}.value",
            value=value,
            reader=lambda raw: validation.normalise_channel_value(raw, channel_type=kind),
        )
        if text is not None:
            self._channels.append(Channel(type=kind, value=text))

    def field(self, *, id_path: str, field_id: object, value_path: str, value: object) -> None:
        """One additional field value: ``fields[0].id``/``.value`` or ``profileInputs[0]...``."""
        known = self._collector.read(path=id_path, value=field_id, reader=read_positive_id)
        if known is None:
            return
        definition = self._definitions.get(known)
        if definition is None:
            reason = "is not an additional field of this account; define the field first"
            self._collector.add(path=id_path, value=field_id, reason=reason)
            return
        if known in self._fields:
            self._collector.add(path=id_path, value=field_id, reason="is given twice; send it once")
            return
        result = self._collector.read(
            path=value_path,
            value=value,
            reader=lambda raw: normalise_field_value(raw, definition=definition),
        )
        if result is None and definition.required:
            reason = f'would clear required field "{definition.name}"; send a value'
            self._collector.add(path=value_path, value=value, reason=reason)
        self._fields[known] = result

    def build(self, *, creating: bool, fields_path: str) -> ContactData:
        """The contact, or ``ContactValidationError`` with every violation recorded."""
        if creating:
            for field_id, definition in sorted(self._definitions.items()):
                if definition.required and field_id not in self._fields:
                    reason = (
                        f'lacks required field {field_id} "{definition.name}";'
                        " a new contact must have it"
                    )
                    self._collector.add(path=fields_path, value=None, reason=reason)
        self._collector.raise_if_any()
        return self._contact()

    def _contact(self) -> ContactData:
        # The first email and the first sms channel are the contact's email and phone;
        # the other channels, push tokens apart, are kept in the order they came.
        first = {kind: self._first_index(kind) for kind in ("email", "sms")}
        email, phone = self._text("email"), self._text("phone")
        if first["email"] is not None:
            email = self._channels[first["email"]].value
        if first["sms"] is not None:
            phone = self._channels[first["sms"]].value
        confirmed = self._values.get("confirmed")
        return ContactData(
            contact_id=self._contact_id,
            first_name=self._text("first_name"),
            last_name=self._text("last_name"),
            email=email,
            phone=phone,
            push_tokens=tuple(c.value for c in self._channels if c.type == "mobilepush"),
            other_channels=tuple(
                channel
                for index, channel in enumerate(self._channels)
                if channel.type != "mobilepush" and index not in first.values()
            ),
            external_customer_id=self._text("external_customer_id"),
            contact_key=self._text("contact_key"),
            language_code=self._text("language_code"),
            time_zone=self._text("time_zone"),
            address=Address(
                region=self._text("address.region"),
                town=self._text("address.town"),
                address=self._text("address.address"),
                postcode=self._text("address.postcode"),
            ),
            confirmed=confirmed if isinstance(confirmed, bool) else None,
            fields=dict(self._fields),
            present=frozenset(self._present),
        )

    def _text(self, name: str) -> str | None:
        value = self._values.get(name)
        return value if isinstance(value, str) else None

    def _first_index(self, kind: ChannelType) -> int | None:
        return next((i for i, channel in enumerate(self._channels) if channel.type == kind), None)


def _channel_type(value: object) -> ChannelType:
    if isinstance(value, str):
        kind = value.strip().lower()
        for known in CHANNEL_TYPES:
            if kind == known:
                return known
    raise InvalidValue(f"is not a channel type; use one of {', '.join(CHANNEL_TYPES)}")
