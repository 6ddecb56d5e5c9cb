"""The contact as plain data, independent of storage and transport.

A ``ContactData`` is both a full contact and a change to one: ``present`` names the
attributes the caller gave (``None`` then means "clear it"), so an update touches only
those. Additional field values live in ``fields``, keyed by field id; a key there is a
given value and ``None`` clears it. Values are already validated and normalised.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Final, Literal, get_args

from server.contacts.field_values import FieldValue, render_field_value

__all__ = [
    "ADDRESS_ATTRIBUTES",
    "ALL_ATTRIBUTES",
    "CHANNEL_ATTRIBUTES",
    "CHANNEL_TYPES",
    "Address",
    "Channel",
    "ChannelType",
    "ContactData",
]

ChannelType = Literal[
    "email", "sms", "viber", "mobilepush", "webpush", "appinbox", "widget", "inapp"
]
CHANNEL_TYPES: Final[tuple[ChannelType, ...]] = get_args(ChannelType)
ADDRESS_ATTRIBUTES: Final = (
    "address.region",
    "address.town",
    "address.address",
    "address.postcode",
)
# In the API form these arrive together in one ``channels`` list, so they are given together.
CHANNEL_ATTRIBUTES: Final = ("email", "phone", "push_tokens", "other_channels")
ALL_ATTRIBUTES: Final = frozenset(
    {
        "first_name",
        "last_name",
        *CHANNEL_ATTRIBUTES,
        "external_customer_id",
        "contact_key",
        "language_code",
        "time_zone",
        *ADDRESS_ATTRIBUTES,
        "confirmed",
    }
)


@dataclass(frozen=True, kw_only=True)
class Address:
    """A contact's postal address; each part may be missing."""

    region: str | None = None
    town: str | None = None
    address: str | None = None
    postcode: str | None = None


@dataclass(frozen=True, kw_only=True)
class Channel:
    """A channel beyond the first email, the first phone and mobile push tokens."""

    type: ChannelType
    value: str


@dataclass(frozen=True, kw_only=True)
class ContactData:
    """A validated contact or contact change; see the module docstring for ``present``."""

    contact_id: int | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    push_tokens: tuple[str, ...] = ()
    other_channels: tuple[Channel, ...] = ()
    external_customer_id: str | None = None
    contact_key: str | None = None
    language_code: str | None = None
    time_zone: str | None = None
    address: Address = field(default_factory=Address)
    confirmed: bool | None = None
    fields: Mapping[int, FieldValue | None] = field(default_factory=dict)
    present: frozenset[str] = frozenset()

    def only(self, *, attributes: Collection[str] | None = None,
             field_ids: Collection[int] | None = None) -> ContactData:
        """This change narrowed to ``attributes`` and to the additional fields
        ``field_ids`` (None: that kind is not narrowed)."""
        present = self.present if attributes is None else self.present.intersection(attributes)
        fields = self.fields if field_ids is None else {
            field_id: value for field_id, value in self.fields.items() if field_id in field_ids}
        return replace(self, present=present, fields=fields)

    def to_api_dict(self) -> dict[str, object]:
        """The eSputnik API form (``GET /api/v1/contact/{id}``) of the present attributes."""
        body: dict[str, object] = {}
        if self.contact_id is not None:
            body["id"] = self.contact_id
        self._put(body, "firstName", "first_name", self.first_name)
        self._put(body, "lastName", "last_name", self.last_name)
        if self.present.intersection(CHANNEL_ATTRIBUTES):
            body["channels"] = [
                {"type": channel.type, "value": channel.value} for channel in self.all_channels()
            ]
        self._put(body, "externalCustomerId", "external_customer_id", self.external_customer_id)
        self._put(body, "contactKey", "contact_key", self.contact_key)
        self._put(body, "languageCode", "language_code", self.language_code)
        self._put(body, "timeZone", "time_zone", self.time_zone)
        address: dict[str, object] = {}
        for name in ADDRESS_ATTRIBUTES:
            part = name.removeprefix("address.")
            self._put(address, part, name, getattr(self.address, part))
        if address:
            body["address"] = address
        if self.fields:
            body["fields"] = [
                {"id": field_id, "value": render_field_value(value)}
                for field_id, value in sorted(self.fields.items())
            ]
        self._put(body, "confirmed", "confirmed", self.confirmed)
        return body

    def all_channels(self) -> list[Channel]:
        """Every channel in API order: email, phone (as sms), push tokens, then the others."""
        channels: list[Channel] = []
        if self.email is not None:
            channels.append(Channel(type="email", value=self.email))
        if self.phone is not None:
            channels.append(Channel(type="sms", value=self.phone))
        channels.extend(Channel(type="mobilepush", value=token) for token in self.push_tokens)
        channels.extend(self.other_channels)
        return channels

    def apply_to(self, current: ContactData) -> ContactData:
        """``current`` changed by this update: present attributes replace, the rest stay."""
        changed = {
            name: getattr(self if name in self.present else current, name)
            for name in ALL_ATTRIBUTES
            if "." not in name
        }
        address = Address(
            **{
                part: getattr(self.address if name in self.present else current.address, part)
                for name in ADDRESS_ATTRIBUTES
                for part in [name.removeprefix("address.")]
            }
        )
        fields = {**current.fields, **self.fields}
        return ContactData(
            contact_id=current.contact_id if current.contact_id is not None else self.contact_id,
            address=address,
            fields={field_id: value for field_id, value in fields.items() if value is not None},
            present=current.present | self.present,
            **changed,
        )

    def _put(self, body: dict[str, object], key: str, attribute: str, value: object) -> None:
        if attribute in self.present:
            body[key] = value
