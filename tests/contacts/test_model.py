"""The contact model: the API rendering and update-only merging."""

from __future__ import annotations

from datetime import date

from server.contacts import (
    ALL_ATTRIBUTES,
    Address,
    Channel,
    ContactData,
    FieldDefinition,
    parse_api_form,
)

FIELDS = {10001: FieldDefinition(id=10001, name="Birthday", type="date")}
STORED = ContactData(
    contact_id=7,
    first_name="Ann",
    email="a@b.ua",
    phone="+380501234567",
    push_tokens=("tok",),
    other_channels=(Channel(type="viber", value="+380501234567"),),
    address=Address(town="Kyiv"),
    fields={10001: date(2020, 11, 23)},
    present=ALL_ATTRIBUTES,
)


def test_to_api_dict_renders_every_present_attribute() -> None:
    """A full contact renders in the API form, absent values as null, channels in order."""
    assert STORED.to_api_dict() == {
        "id": 7,
        "firstName": "Ann",
        "lastName": None,
        "channels": [
            {"type": "email", "value": "a@b.ua"},
            {"type": "sms", "value": "+380501234567"},
            {"type": "mobilepush", "value": "tok"},
            {"type": "viber", "value": "+380501234567"},
        ],
        "externalCustomerId": None,
        "contactKey": None,
        "languageCode": None,
        "timeZone": None,
        "address": {"region": None, "town": "Kyiv", "address": None, "postcode": None},
        "fields": [{"id": 10001, "value": "2020-11-23"}],
        "confirmed": None,
    }


def test_to_api_dict_of_a_full_contact_parses_back_to_it() -> None:
    """GET's rendering, posted back, yields the same contact."""
    assert parse_api_form(STORED.to_api_dict(), fields=FIELDS) == STORED


def test_apply_to_changes_only_present_attributes() -> None:
    """An update touches what it names: the town changes, the name and phone stay."""
    change = parse_api_form(
        {"address": {"town": "Lviv"}, "fields": [{"id": 10001, "value": None}]}, fields=FIELDS
    )
    updated = change.apply_to(STORED)
    assert updated.address == Address(town="Lviv")
    assert (updated.first_name, updated.phone, updated.contact_id) == ("Ann", "+380501234567", 7)
    assert updated.fields == {}


def test_apply_to_with_channels_replaces_all_channels() -> None:
    """A channels list in an update replaces email, phone, tokens and other channels at once."""
    change = parse_api_form({"channels": [{"type": "email", "value": "new@b.ua"}]}, fields=FIELDS)
    updated = change.apply_to(STORED)
    assert (updated.email, updated.phone, updated.push_tokens, updated.other_channels) == (
        "new@b.ua",
        None,
        (),
        (),
    )
