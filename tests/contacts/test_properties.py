"""Property tests: no input crashes the parsers or validators, and normalising is stable."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.contacts import (
    CHANNEL_TYPES,
    ContactValidationError,
    FieldDefinition,
    InvalidValue,
    identifiers_from_params,
    normalise_field_value,
    parse_api_form,
    parse_event_form,
    parse_field_definition,
    render_field_value,
    validation,
)

FIELDS = {
    1: FieldDefinition(id=1, name="Nick", type="text"),
    2: FieldDefinition(id=2, name="Bio", type="textarea"),
    3: FieldDefinition(id=3, name="Age", type="number", min=Decimal(0), max=Decimal(150)),
    4: FieldDefinition(id=4, name="Score", type="decimal", min=Decimal("-1e6")),
    5: FieldDefinition(id=5, name="Birthday", type="date"),
    6: FieldDefinition(id=6, name="Seen", type="datetime"),
    7: FieldDefinition(id=7, name="Colour", type="dropdown", allowed_values=("Red", "Green")),
    8: FieldDefinition(id=8, name="Likes", type="checkbox", allowed_values=("a", "b, c", "d")),
    9: FieldDefinition(id=9, name="Tags", type="tags"),
}
NORMALISERS: list[Callable[[object], object]] = [
    validation.normalise_name,
    validation.normalise_phone,
    validation.normalise_email,
    validation.normalise_language_code,
    validation.normalise_time_zone,
    validation.normalise_external_id,
    validation.normalise_contact_key,
    validation.normalise_region,
    validation.normalise_town,
    validation.normalise_street_address,
    validation.normalise_postcode,
    validation.normalise_confirmed,
]
PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# Text with every code point, lone surrogates included: JSON "\ud800" escapes produce them.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | any_text
    | st.sampled_from(["380501234567", "+1-541-754-3010", "site@ukr.net", "2020-11-23", "Red"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(any_text | st.sampled_from(["type", "value", "id"]), children, max_size=4)
    ),
    max_leaves=12,
)
event_keys = st.sampled_from(
    [
        "firstname",
        "lastname",
        "email",
        "sms",
        "phone",
        "town",
        "region",
        "address",
        "postcode",
        "timeZone",
        "languageCode",
        "externalCustomerId",
        "contactKey",
        "confirmed",
        "profileInputs",
    ]
)
api_keys = st.sampled_from(
    [
        "id",
        "firstName",
        "lastName",
        "channels",
        "externalCustomerId",
        "contactKey",
        "languageCode",
        "timeZone",
        "address",
        "fields",
        "confirmed",
    ]
)
field_entries = st.lists(
    st.fixed_dictionaries(
        {"id": st.integers(0, 10) | json_values, "value": json_values},
    ),
    max_size=4,
)
profile_entries = st.lists(
    st.fixed_dictionaries({"profileInputId": st.integers(0, 10), "value": json_values}),
    max_size=4,
)
channel_entries = st.lists(
    st.fixed_dictionaries(
        {"type": st.sampled_from(CHANNEL_TYPES) | json_values, "value": json_values}
    ),
    max_size=5,
)
event_bodies = st.dictionaries(
    event_keys, json_values | profile_entries, max_size=8
) | st.dictionaries(any_text, json_values, max_size=3)
api_bodies = (
    st.dictionaries(api_keys, json_values | field_entries | channel_entries, max_size=8)
    | json_values
)

# Values that pass more often, so the round-trip properties see full contacts.
printable = st.text(st.characters(categories=["L", "M", "N", "P", "Zs"]), max_size=20)
plausible_dates = st.dates(min_value=date(1950, 1, 1), max_value=date(2060, 12, 31)).flatmap(
    lambda day: st.sampled_from(
        [
            day.isoformat(),
            day.strftime("%d/%m/%Y"),
            day.strftime("%d.%m.%Y"),
            day.strftime("%Y/%m/%d"),
        ]
    )
)
plausible_fields = st.lists(
    st.one_of(
        st.tuples(st.just(1), printable),
        st.tuples(st.just(3), st.integers(0, 150)),
        st.tuples(st.just(4), st.decimals(allow_nan=False, allow_infinity=False, places=2)),
        st.tuples(st.just(5), plausible_dates),
        st.tuples(
            st.just(6),
            st.datetimes(min_value=datetime(1900, 1, 1)).map(
                lambda at: at.strftime("%Y-%m-%dT%H:%M:%S")
            ),
        ),
        st.tuples(st.just(7), st.sampled_from(["Red", "green"])),
        st.tuples(st.just(8), st.lists(st.sampled_from(["a", "b, c", "d"]), max_size=3)),
        st.tuples(st.just(9), printable),
    ),
    max_size=6,
    unique_by=lambda pair: pair[0],
).map(lambda pairs: [{"id": field_id, "value": value} for field_id, value in pairs])
plausible_api_bodies = st.fixed_dictionaries(
    {},
    optional={
        "id": st.integers(1, 10**6),
        "firstName": st.sampled_from(["Ann", "Мар’яна", " José  María ", None]),
        "lastName": st.sampled_from(["Lee", "O'Brien", "Ковальчук-Шевченко"]) | printable,
        "channels": st.lists(
            st.sampled_from(
                [
                    {"type": "email", "value": "Site@UKR.net"},
                    {"type": "sms", "value": "380501234567"},
                    {"type": "viber", "value": "+380955547708"},
                    {"type": "mobilepush", "value": "tok"},
                    {"type": "webpush", "value": "wp"},
                    {"type": "email", "value": "b@b.ua"},
                ]
            ),
            max_size=4,
        ),
        "externalCustomerId": st.sampled_from(["AV13760", 13760, "", "null", None]),
        "languageCode": st.sampled_from(["uk", "EN-us", "zh-hant-TW"]),
        "timeZone": st.sampled_from(["Europe/Kyiv", "etc/gmt+03", "UTC"]),
        "address": st.dictionaries(
            st.sampled_from(["region", "town", "address", "postcode"]), printable
        ),
        "fields": plausible_fields,
        "confirmed": st.booleans(),
    },
)


@PROPERTY_SETTINGS
@given(body=event_bodies)
def test_event_form_never_crashes(body: object) -> None:
    """Any JSON shape in the event form either parses or raises ContactValidationError."""
    for data in (body, json.dumps(body)):
        try:
            parse_event_form(data, fields=FIELDS, creating=True)
        except ContactValidationError as error:
            assert error.violations
            for violation in error.violations:
                violation.message.encode("utf-8")  # responses must be able to carry it


@PROPERTY_SETTINGS
@given(body=api_bodies)
def test_api_form_never_crashes(body: object) -> None:
    """Any JSON shape in the API form either parses or raises ContactValidationError."""
    try:
        parse_api_form(body, fields=FIELDS)
    except ContactValidationError as error:
        assert all(violation.message for violation in error.violations)


@PROPERTY_SETTINGS
@given(text=any_text)
def test_arbitrary_json_text_never_crashes(text: str) -> None:
    """Arbitrary text as contactJson is either a contact or a violation, never an exception."""
    try:
        parse_event_form(text, fields=FIELDS)
    except ContactValidationError:
        pass


@PROPERTY_SETTINGS
@given(value=json_values, index=st.integers(0, len(NORMALISERS) - 1))
def test_validators_are_total_and_idempotent(value: object, index: int) -> None:
    """Each validator returns or raises InvalidValue, and its output normalises to itself."""
    normalise = NORMALISERS[index]
    try:
        result = normalise(value)
    except InvalidValue:
        return
    assert normalise(result) == result


@PROPERTY_SETTINGS
@given(value=json_values | plausible_dates, field_id=st.sampled_from(sorted(FIELDS)))
def test_field_values_are_total_and_stable(value: object, field_id: int) -> None:
    """A field value normalises to a fixed point, directly and through its rendered JSON."""
    definition = FIELDS[field_id]
    try:
        result = normalise_field_value(value, definition=definition)
    except InvalidValue:
        return
    assert normalise_field_value(result, definition=definition) == result
    assert normalise_field_value(render_field_value(result), definition=definition) == result


@PROPERTY_SETTINGS
@given(day=st.dates(), at=st.datetimes())
def test_every_real_date_and_time_round_trips(day: date, at: datetime) -> None:
    """Every calendar date and second-precision time survives rendering and reading back."""
    at = at.replace(microsecond=0)
    assert normalise_field_value(render_field_value(day), definition=FIELDS[5]) == day
    assert normalise_field_value(render_field_value(at), definition=FIELDS[6]) == at


@PROPERTY_SETTINGS
@given(body=plausible_api_bodies | api_bodies)
def test_api_form_round_trips_through_to_api_dict(body: object) -> None:
    """Whatever parse_api_form accepts, to_api_dict renders back to the same contact."""
    try:
        contact = parse_api_form(body, fields=FIELDS)
    except ContactValidationError:
        return
    rendered = contact.to_api_dict()
    json.dumps(rendered)  # the rendering is plain JSON
    assert parse_api_form(rendered, fields=FIELDS) == contact


@PROPERTY_SETTINGS
@given(
    params=st.lists(
        st.tuples(any_text | event_keys | st.sampled_from(["ContactId", "Email"]), json_values)
    )
)
def test_identifiers_never_crash(params: list[tuple[str, object]]) -> None:
    """Any params give Identifiers; bad identifier values are reported, not raised."""
    found = identifiers_from_params(params)
    assert len(found.lookup_order()) <= 6


@PROPERTY_SETTINGS
@given(body=json_values)
def test_field_definitions_never_crash(body: object) -> None:
    """Any JSON as a field definition body parses or raises ContactValidationError."""
    try:
        parse_field_definition(body)
    except ContactValidationError:
        pass
