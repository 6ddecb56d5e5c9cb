"""Contacts as plain Python: the model, validation, both wire forms and event identity.

No storage and no transport here; the database layer and the gRPC/HTTP boundary call these
functions. Their rejection, ``ContactValidationError``, is part of the one error tree
(``server.errors``), mapped at the boundaries like every other.
"""

from server.contacts.definitions import (
    FIELD_TYPES,
    FieldDefinition,
    FieldType,
    parse_field_definition,
    parse_field_type,
)
from server.contacts.errors import InvalidValue
from server.contacts.field_values import FieldValue, normalise_field_value, render_field_value
from server.contacts.forms import parse_api_form, parse_event_form
from server.contacts.identity import (
    LOOKUP_PRIORITY,
    IdentifierKind,
    Identifiers,
    identifiers_from_params,
)
from server.contacts.model import (
    ALL_ATTRIBUTES,
    CHANNEL_TYPES,
    Address,
    Channel,
    ChannelType,
    ContactData,
)
from server.contacts.validation import (
    email_key,
    is_blank_external_id,
    normalise_email,
    normalise_language_code,
    normalise_name,
    normalise_phone,
    normalise_time_zone,
)
from server.errors import ContactValidationError, Violation

__all__ = [
    "ALL_ATTRIBUTES",
    "CHANNEL_TYPES",
    "FIELD_TYPES",
    "LOOKUP_PRIORITY",
    "Address",
    "Channel",
    "ChannelType",
    "ContactData",
    "ContactValidationError",
    "FieldDefinition",
    "FieldType",
    "FieldValue",
    "IdentifierKind",
    "Identifiers",
    "InvalidValue",
    "Violation",
    "email_key",
    "identifiers_from_params",
    "is_blank_external_id",
    "normalise_email",
    "normalise_field_value",
    "normalise_language_code",
    "normalise_name",
    "normalise_phone",
    "normalise_time_zone",
    "parse_api_form",
    "parse_event_form",
    "parse_field_definition",
    "parse_field_type",
    "render_field_value",
]
