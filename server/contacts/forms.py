"""The two wire forms of a contact, mapped onto one ``ContactData``.

- Event/workflow form, lower case, as in a ``contactJson`` param or a workflow Task block:
  ``firstname``, ``lastname``, ``email``, ``sms``/``phone``, ``town``, ``region``,
  ``address``, ``postcode``, ``timeZone``, ``languageCode``, ``externalCustomerId``,
  ``contactKey``, ``profileInputs[{profileInputId, value}]``, ``confirmed``.
- API form, as ``/api/v1/contact`` takes it: ``id``, ``firstName``, ``lastName``,
  ``channels`` (a list of ``{type, value}`` or one such object), ``externalCustomerId``,
  ``contactKey``, ``languageCode``, ``timeZone``, ``address{region, town, address,
  postcode}``, ``fields[{id, value}]``, and ``confirmed`` as an extension.

In the event form a blank external id (null, "", blanks, "null") is ignored, as eSputnik
does for events; in the API form it clears the stored one like any null attribute.
Keys match ignoring case. In the API form an unknown top-level member is a violation
naming it (nothing sent is dropped silently); the read-only members our answers carry
(``READ_ONLY_MEMBERS``: ``addressBookId``, ``groups``, ``status``, ``createdAt``,
``updatedAt``) are accepted and not applied, since clients echo whole ``GET`` answers
back. The event form keeps ignoring keys it does not model: it is the form of event
params, whose other members belong to the event. A null list or object counts as not given.

``unwrap_api_form`` reads the wrapped form a public Ruby client sends to update a contact,
``{"contact": {...}, "groups": [...] | null, "formType": null}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Final

from server.contacts.builder import ContactBuilder
from server.contacts.definitions import FieldDefinition
from server.contacts.errors import ViolationCollector
from server.contacts.group_names import parse_group_names
from server.contacts.model import ContactData
from server.contacts.scalars import json_type
from server.contacts.validation import is_blank_external_id
from server.errors import InvalidArgument, Violation

__all__ = ["API_MEMBERS", "READ_ONLY_MEMBERS", "parse_api_form", "parse_event_form",
           "unwrap_api_form"]

# The API form's members as callers spell them (matched ignoring case).
API_MEMBERS: Final = ("id", "firstName", "lastName", "channels", "externalCustomerId",
                      "contactKey", "languageCode", "timeZone", "address", "fields",
                      "confirmed")
READ_ONLY_MEMBERS: Final = ("addressBookId", "groups", "status", "createdAt", "updatedAt")
_READ_ONLY: Final = frozenset(name.lower() for name in READ_ONLY_MEMBERS)
_WRAPPER_MEMBERS: Final = ("contact", "groups", "formType")

_COMMON_ATTRIBUTES: Final = {
    "externalcustomerid": "external_customer_id",
    "contactkey": "contact_key",
    "languagecode": "language_code",
    "timezone": "time_zone",
    "confirmed": "confirmed",
}
_EVENT_ATTRIBUTES: Final = {
    **_COMMON_ATTRIBUTES,
    "firstname": "first_name",
    "lastname": "last_name",
    "email": "email",
    "sms": "phone",
    "phone": "phone",
    "town": "address.town",
    "region": "address.region",
    "address": "address.address",
    "postcode": "address.postcode",
}
_API_ATTRIBUTES: Final = {**_COMMON_ATTRIBUTES, "firstname": "first_name", "lastname": "last_name"}
_ADDRESS_PARTS: Final = {
    "region": "address.region",
    "town": "address.town",
    "address": "address.address",
    "postcode": "address.postcode",
}


def parse_event_form(
    data: object,
    *,
    fields: Mapping[int, FieldDefinition],
    field_prefix: str = "contactJson",
    creating: bool = False,
) -> ContactData:
    """Read the lower-case form (an object or its JSON text); ``creating`` enforces required fields."""
    collector = ViolationCollector()
    body = _load_object(data, root=field_prefix or "body", collector=collector)
    builder = ContactBuilder(fields=fields, collector=collector)
    attributes = _AttributeReader(builder=builder, collector=collector)
    for key, value in body.items():
        path = _join(field_prefix, key)
        lowered = key.lower()
        if lowered == "profileinputs":
            _read_fields(builder, collector, path=path, value=value, id_key="profileInputId")
        elif lowered == "externalcustomerid" and is_blank_external_id(value):
            continue  # in events eSputnik ignores a blank external id rather than clearing it
        elif lowered in _EVENT_ATTRIBUTES:
            attributes.read(_EVENT_ATTRIBUTES[lowered], key=key, path=path, value=value)
    return builder.build(creating=creating, fields_path=_join(field_prefix, "profileInputs"))


def parse_api_form(
    data: object,
    *,
    fields: Mapping[int, FieldDefinition],
    field_prefix: str = "",
    creating: bool = False,
) -> ContactData:
    """Read the API form (an object or its JSON text); ``creating`` enforces required fields."""
    collector = ViolationCollector()
    body = _load_object(data, root=field_prefix or "body", collector=collector)
    builder = ContactBuilder(fields=fields, collector=collector)
    attributes = _AttributeReader(builder=builder, collector=collector)
    handlers: dict[str, Callable[[str, object], None]] = {
        "id": lambda path, value: builder.contact_id(path=path, value=value),
        "channels": lambda path, value: _read_channels(builder, collector, path=path, value=value),
        "address": lambda path, value: _read_address(attributes, collector, path=path, value=value),
        "fields": lambda path, value: _read_fields(
            builder, collector, path=path, value=value, id_key="id"
        ),
    }
    for key, value in body.items():
        path = _join(field_prefix, key)
        lowered = key.lower()
        if lowered in handlers:
            handlers[lowered](path, value)
        elif lowered in _API_ATTRIBUTES:
            attributes.read(_API_ATTRIBUTES[lowered], key=key, path=path, value=value)
        elif lowered not in _READ_ONLY:
            collector.add(path=path, value=value, reason=(
                "is not a member of a contact; it takes " + ", ".join(API_MEMBERS)))
    return builder.build(creating=creating, fields_path=_join(field_prefix, "fields"))


def unwrap_api_form(doc: Mapping[str, object]) -> tuple[Mapping[str, object], list[str]]:
    """The contact of a body and the static groups it joins: the body itself and none, or,
    for ``{"contact": {...}, "groups", "formType"}``, the wrapped contact and its groups
    (``formType`` belongs to subscription forms: only null is accepted here)."""
    if not isinstance(doc.get("contact"), Mapping):
        return doc, []
    unknown = [name for name in doc if name not in _WRAPPER_MEMBERS]
    problems = [Violation(name, "is not a member of the wrapped form; it takes "
                          + ", ".join(_WRAPPER_MEMBERS)) for name in unknown]
    if doc.get("formType") is not None:
        problems.append(Violation("formType", "belongs to subscription forms (POST "
                                  "/api/v1/contact/subscribe); send null here"))
    if problems:
        raise InvalidArgument.from_violations(problems)
    contact = doc["contact"]
    assert isinstance(contact, Mapping)
    return contact, parse_group_names(doc.get("groups"), name="groups")


class _AttributeReader:
    """Feeds attributes to the builder, catching one attribute sent under two keys."""

    def __init__(self, *, builder: ContactBuilder, collector: ViolationCollector) -> None:
        self._builder = builder
        self._collector = collector
        self._seen: dict[str, tuple[str, object]] = {}

    def read(self, attribute: str, *, key: str, path: str, value: object) -> None:
        if attribute in self._seen:
            earlier_key, earlier_value = self._seen[attribute]
            if earlier_value != value:
                reason = f"repeats {earlier_key!r} with another value; send only one of them"
                self._collector.add(path=path, value=value, reason=reason)
            return
        self._seen[attribute] = (key, value)
        self._builder.attribute(attribute, path=path, value=value)


def _read_channels(
    builder: ContactBuilder, collector: ViolationCollector, *, path: str, value: object
) -> None:
    if value is None:
        return
    builder.channels_given()
    for entry_path, entry in _entries(value, path=path, collector=collector):
        builder.channel(
            path=entry_path,
            channel_type=_member(entry, "type")[1],
            value=_member(entry, "value")[1],
        )


def _read_address(
    attributes: _AttributeReader, collector: ViolationCollector, *, path: str, value: object
) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping):
        reason = f"must be an object {{region, town, address, postcode}}, not {json_type(value)}"
        collector.add(path=path, value=value, reason=reason)
        return
    for key, part in value.items():
        if isinstance(key, str) and key.lower() in _ADDRESS_PARTS:
            attributes.read(
                _ADDRESS_PARTS[key.lower()], key=f"address.{key}", path=f"{path}.{key}", value=part
            )


def _read_fields(
    builder: ContactBuilder,
    collector: ViolationCollector,
    *,
    path: str,
    value: object,
    id_key: str,
) -> None:
    for entry_path, entry in _entries(value, path=path, collector=collector):
        id_key, field_id = _member(entry, id_key)
        value_key, field_value = _member(entry, "value")
        builder.field(
            id_path=f"{entry_path}.{id_key}",
            field_id=field_id,
            value_path=f"{entry_path}.{value_key}",
            value=field_value,
        )


def _load_object(data: object, *, root: str, collector: ViolationCollector) -> Mapping[str, object]:
    """The top-level object: given as such, or as JSON text (how the v1 event API sends it)."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except (ValueError, RecursionError):
            collector.reject(path=root, value=data, reason="is not valid JSON; send a JSON object")
    if not isinstance(data, Mapping):
        collector.reject(
            path=root, value=data, reason=f"must be a JSON object, not {json_type(data)}"
        )
    # Parsed JSON has text keys only; a caller's Python mapping might not, so skip the others.
    return {key: value for key, value in data.items() if isinstance(key, str)}


def _entries(
    value: object, *, path: str, collector: ViolationCollector
) -> list[tuple[str, Mapping[str, object]]]:
    """The objects of a list member (one object alone counts as a list of one), with paths."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [(path, value)]
    if not isinstance(value, list):
        collector.add(
            path=path, value=value, reason=f"must be a list of objects, not {json_type(value)}"
        )
        return []
    entries: list[tuple[str, Mapping[str, object]]] = []
    for index, item in enumerate(value):
        if isinstance(item, Mapping):
            entries.append((f"{path}[{index}]", item))
        else:
            reason = f"must be an object, not {json_type(item)}"
            collector.add(path=f"{path}[{index}]", value=item, reason=reason)
    return entries


def _member(entry: Mapping[str, object], name: str) -> tuple[str, object]:
    """The member ``name`` matched ignoring case: the caller's spelling and its value."""
    lowered = name.lower()
    for key, value in entry.items():
        if isinstance(key, str) and key.lower() == lowered:
            return key, value
    return name, None


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key
