"""Both wire forms of a contact: mapping, every violation with its path, JSON text input."""

from __future__ import annotations

import json
from datetime import date

import pytest

from server.contacts import (
    Address,
    Channel,
    ContactData,
    ContactValidationError,
    FieldDefinition,
    parse_api_form,
    parse_event_form,
)

FIELDS = {
    10001: FieldDefinition(id=10001, name="Birthday", type="date"),
    10002: FieldDefinition(id=10002, name="Loyalty", type="number", required=True),
}
OPTIONAL_FIELDS = {10001: FIELDS[10001]}
SEED_PROFILE = {"profileInputs": [{"profileInputId": 10001, "value": "2020-11-23"}]}


def _violations(excinfo: pytest.ExceptionInfo[ContactValidationError]) -> dict[str, str]:
    return {v.field: v.message for v in excinfo.value.violations}


def test_seed_create_or_update_data_maps_onto_the_model() -> None:
    """The seed's email, phone, external id and profileInputs 10001 give one normalised contact."""
    contact = parse_event_form(
        {
            "email": "site@ukr.net",
            "phone": "380501234567",
            "externalCustomerId": "AV13760",
            **SEED_PROFILE,
        },
        fields=OPTIONAL_FIELDS,
    )
    assert contact.email == "site@ukr.net"
    assert contact.phone == "+380501234567"
    assert contact.external_customer_id == "AV13760"
    assert contact.fields == {10001: date(2020, 11, 23)}
    assert contact.present == {"email", "phone", "external_customer_id"}


def test_seed_contact_in_api_form_gives_the_same_values() -> None:
    """The same contact sent in the API form yields the same phone, external id and field."""
    contact = parse_api_form(
        {
            "channels": [
                {"type": "email", "value": "site@ukr.net"},
                {"type": "sms", "value": "380501234567"},
            ],
            "externalCustomerId": "AV13760",
            "fields": [{"id": 10001, "value": "2020-11-23"}],
        },
        fields=OPTIONAL_FIELDS,
    )
    assert (contact.email, contact.phone) == ("site@ukr.net", "+380501234567")
    assert contact.external_customer_id == "AV13760"
    assert contact.to_api_dict()["fields"] == [{"id": 10001, "value": "2020-11-23"}]


def test_seed_contact_json_example_is_valid() -> None:
    """The seed's contactJson example (with real values) passes as a new contact."""
    contact = parse_event_form(
        '{"firstname":"Olena","lastname":"Kovalenko","sms":"+380955547708","town":"Kyiv",'
        '"timeZone":"Etc/GMT+03","languageCode":"uk","profileInputs":'
        '[{"profileInputId":10001,"value":"23.11.2020"}],"confirmed":false}',
        fields=OPTIONAL_FIELDS,
        creating=True,
    )
    assert contact.address == Address(town="Kyiv")
    assert (contact.time_zone, contact.language_code, contact.confirmed) == (
        "Etc/GMT+3",
        "uk",
        False,
    )


def test_contact_json_with_five_invalid_fields_reports_all_five() -> None:
    """Five different invalid fields give five violations, each naming field, value and reason."""
    with pytest.raises(ContactValidationError) as caught:
        parse_event_form(
            {
                "firstname": "J0hn",
                "sms": "12ab",
                "timeZone": "Mars/Olympus",
                "languageCode": "en_US",
                "profileInputs": [{"profileInputId": 10001, "value": "31.02.2020"}],
            },
            fields=OPTIONAL_FIELDS,
            creating=True,
        )
    found = _violations(caught)
    assert sorted(found) == [
        "contactJson.firstname",
        "contactJson.languageCode",
        "contactJson.profileInputs[0].value",
        "contactJson.sms",
        "contactJson.timeZone",
    ]
    assert found["contactJson.sms"] == (
        '"12ab": not a phone number in international format such as +380501234567'
    )
    assert '"31.02.2020"' in found["contactJson.profileInputs[0].value"]


def test_malformed_phone_rejects_the_whole_change() -> None:
    """The seed data with a malformed phone is rejected as a whole, saying why."""
    with pytest.raises(ContactValidationError) as caught:
        parse_event_form(
            {"email": "site@ukr.net", "phone": "38050abc", **SEED_PROFILE}, fields=OPTIONAL_FIELDS
        )
    assert list(_violations(caught)) == ["contactJson.phone"]


def test_json_text_that_does_not_parse_is_one_violation() -> None:
    """A contactJson string that is not JSON gives exactly one "not valid JSON" violation."""
    with pytest.raises(ContactValidationError) as caught:
        parse_event_form('{"firstname": ', fields={})
    assert [v.field for v in caught.value.violations] == ["contactJson"]
    assert "not valid JSON" in caught.value.violations[0].message


@pytest.mark.parametrize("body", [[], 42, None, "[1, 2]", '"text"', True])
def test_a_non_object_contact_is_one_violation(body: object) -> None:
    """Lists, numbers, null and JSON text of a non-object are violations at the root."""
    with pytest.raises(ContactValidationError, match="must be a JSON object"):
        parse_api_form(body, fields={})


def test_wrong_json_types_are_violations_not_exceptions() -> None:
    """A number for a name, an object for a phone, a string for profileInputs are violations."""
    with pytest.raises(ContactValidationError) as caught:
        parse_event_form(
            {"firstname": 5, "sms": {"n": 1}, "profileInputs": "10001=x", "confirmed": []},
            fields=OPTIONAL_FIELDS,
        )
    assert sorted(_violations(caught)) == [
        "contactJson.confirmed",
        "contactJson.firstname",
        "contactJson.profileInputs",
        "contactJson.sms",
    ]


def test_unknown_and_duplicate_field_ids_are_violations() -> None:
    """An undefined field id and a repeated one are each reported at their id path."""
    with pytest.raises(ContactValidationError) as caught:
        parse_api_form(
            {
                "fields": [
                    {"id": 99, "value": "x"},
                    {"id": 10001, "value": "2020-11-23"},
                    {"id": "10001", "value": "2020-11-24"},
                    "oops",
                ]
            },
            fields=OPTIONAL_FIELDS,
        )
    assert sorted(_violations(caught)) == ["fields[0].id", "fields[2].id", "fields[3]"]


def test_required_fields_are_enforced_on_create_only() -> None:
    """A missing required field fails a new contact but not an update; clearing it always fails."""
    with pytest.raises(ContactValidationError, match='required field 10002 "Loyalty"'):
        parse_event_form({"email": "a@b.ua"}, fields=FIELDS, creating=True)
    assert parse_event_form({"email": "a@b.ua"}, fields=FIELDS).email == "a@b.ua"
    with pytest.raises(ContactValidationError, match="clear required"):
        parse_api_form({"fields": [{"id": 10002, "value": None}]}, fields=FIELDS)


def test_api_channels_as_one_object_are_accepted() -> None:
    """Some clients send channels as a single object; it counts as a list of one."""
    contact = parse_api_form({"channels": {"type": "EMAIL", "value": "a@b.ua"}}, fields={})
    assert contact.email == "a@b.ua"
    assert contact.phone is None
    assert {"email", "phone", "push_tokens", "other_channels"} <= contact.present


def test_api_channels_of_every_type_map_onto_the_model() -> None:
    """First email and sms become email and phone; mobile push gives tokens; others are kept."""
    contact = parse_api_form(
        {
            "channels": [
                {"type": "email", "value": "a@b.ua"},
                {"type": "email", "value": "second@b.ua"},
                {"type": "sms", "value": "+380501234567"},
                {"type": "viber", "value": "380955547708"},
                {"type": "mobilepush", "value": "tok1"},
                {"type": "webpush", "value": "wp"},
                {"type": "appinbox", "value": "ai"},
                {"type": "widget", "value": "w"},
                {"type": "inapp", "value": "ia"},
            ]
        },
        fields={},
    )
    assert (contact.email, contact.phone, contact.push_tokens) == (
        "a@b.ua",
        "+380501234567",
        ("tok1",),
    )
    assert contact.other_channels[:2] == (
        Channel(type="email", value="second@b.ua"),
        Channel(type="viber", value="+380955547708"),
    )


def test_api_channels_report_paths_types_and_the_two_per_type_limit() -> None:
    """Unknown types, bad values and a third channel of a type are reported at their paths."""
    with pytest.raises(ContactValidationError) as caught:
        parse_api_form(
            {
                "channels": [
                    {"type": "email", "value": "a@b.ua"},
                    {"type": "sms", "value": "12ab"},
                    {"type": "fax", "value": "1"},
                    {"type": "email", "value": "b@b.ua"},
                    {"type": "email", "value": "c@b.ua"},
                ]
            },
            fields={},
        )
    assert sorted(_violations(caught)) == [
        "channels[1].value",
        "channels[2].type",
        "channels[4].type",
    ]


def test_api_form_reads_names_address_and_identifiers() -> None:
    """firstName, lastName, address parts and identifiers land on the model."""
    contact = parse_api_form(
        {
            "id": 17,
            "firstName": "Ann",
            "lastName": "Lee",
            "address": {
                "region": "Kyivska",
                "town": "Kyiv",
                "address": "Khreshchatyk 1",
                "postcode": 1001,
            },
            "contactKey": "ck",
            "languageCode": "en-us",
            "timeZone": "Europe/Kyiv",
            "groups": [{"name": "ignored"}],
        },
        fields={},
    )
    assert contact == ContactData(
        contact_id=17,
        first_name="Ann",
        last_name="Lee",
        address=Address(region="Kyivska", town="Kyiv", address="Khreshchatyk 1", postcode="1001"),
        contact_key="ck",
        language_code="en-US",
        time_zone="Europe/Kyiv",
        present=frozenset(
            {
                "first_name",
                "last_name",
                "address.region",
                "address.town",
                "address.address",
                "address.postcode",
                "contact_key",
                "language_code",
                "time_zone",
            }
        ),
    )


def test_api_form_address_must_be_an_object() -> None:
    """A string where the address object belongs is a violation."""
    with pytest.raises(ContactValidationError) as caught:
        parse_api_form({"address": "Kyiv"}, fields={})
    assert list(_violations(caught)) == ["address"]


def test_field_prefix_prefixes_every_path() -> None:
    """With a prefix (bulk upsert) every path starts with it; without one, paths are bare."""
    with pytest.raises(ContactValidationError) as caught:
        parse_api_form(
            {"firstName": "1", "fields": [{"id": 10001, "value": "x"}]},
            fields=OPTIONAL_FIELDS,
            field_prefix="contacts[3]",
        )
    assert sorted(_violations(caught)) == ["contacts[3].fields[0].value", "contacts[3].firstName"]


def test_one_attribute_under_two_keys_must_agree() -> None:
    """sms and phone both given with different values is a violation; equal values are fine."""
    same = parse_event_form({"sms": "380501234567", "phone": "380501234567"}, fields={})
    assert same.phone == "+380501234567"
    with pytest.raises(ContactValidationError) as caught:
        parse_event_form({"sms": "380501234567", "phone": "+380955547708"}, fields={})
    assert list(_violations(caught)) == ["contactJson.phone"]


def test_event_form_keys_match_ignoring_case() -> None:
    """firstName and FirstName work like firstname in the lower-case form."""
    contact = parse_event_form({"firstName": "Ann", "TIMEZONE": "UTC"}, fields={})
    assert (contact.first_name, contact.time_zone) == ("Ann", "UTC")


def test_blank_external_id_is_not_given() -> None:
    """A "null" external id is ignored instead of clearing the stored one."""
    contact = parse_event_form({"externalCustomerId": " null "}, fields={})
    assert "external_customer_id" not in contact.present


def test_null_values_clear_attributes() -> None:
    """An attribute given as null or blank is present with no value: an update clears it."""
    contact = parse_event_form({"firstname": None, "town": " "}, fields={})
    assert contact.present == {"first_name", "address.town"}
    assert contact.first_name is None


def test_json_text_is_the_same_as_the_object() -> None:
    """The v1 API's escaped JSON text parses exactly like the object it encodes."""
    body = {"firstname": "Ann", "profileInputs": [{"profileInputId": 10001, "value": "2020/11/23"}]}
    assert parse_event_form(json.dumps(body), fields=OPTIONAL_FIELDS) == parse_event_form(
        body, fields=OPTIONAL_FIELDS
    )


def test_api_form_null_external_id_clears_it() -> None:
    """In the API form a null external id is given as "no value", clearing the stored one."""
    contact = parse_api_form({"externalCustomerId": None}, fields={})
    assert "external_customer_id" in contact.present
    assert contact.external_customer_id is None
