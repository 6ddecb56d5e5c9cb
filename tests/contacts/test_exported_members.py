"""The public surface of server.contacts is pinned, so changes to it are deliberate."""

from __future__ import annotations

import server.contacts

EXPECTED = {
    "ALL_ATTRIBUTES", "CHANNEL_TYPES", "FIELD_TYPES", "LOOKUP_PRIORITY", "Address", "Channel",
    "ChannelType", "ContactData", "ContactValidationError", "FieldDefinition", "FieldType",
    "FieldValue", "IdentifierKind", "Identifiers", "InvalidValue", "Violation", "email_key",
    "identifiers_from_params", "is_blank_external_id", "normalise_email",
    "normalise_field_value", "normalise_language_code", "normalise_name", "normalise_phone",
    "normalise_time_zone", "parse_api_form", "parse_event_form", "parse_field_definition",
    "parse_field_type", "render_field_value",
}  # fmt: skip


def test_all_lists_exactly_the_public_api() -> None:
    """__all__ names exactly the expected members, and each of them exists."""
    assert set(server.contacts.__all__) == EXPECTED
    for name in server.contacts.__all__:
        assert hasattr(server.contacts, name)


def test_public_members_are_not_private_modules_leaking() -> None:
    """No module object is exported by accident."""
    exported = [getattr(server.contacts, name) for name in server.contacts.__all__]
    assert not any(type(member).__name__ == "module" for member in exported)
