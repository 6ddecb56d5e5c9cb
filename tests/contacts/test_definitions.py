"""Field definitions: type spellings, the HTTP body and constraints tying members together."""

from __future__ import annotations

from decimal import Decimal

import pytest

from server.contacts import (
    FIELD_TYPES,
    ContactValidationError,
    FieldDefinition,
    InvalidValue,
    parse_field_definition,
    parse_field_type,
)


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("text area", "textarea"),
        ("date-time", "datetime"),
        ("checkbox list", "checkbox"),
        ("CHECKBOX_LIST", "checkbox"),
        ("Date", "date"),
        *[(name, name) for name in FIELD_TYPES],
    ],
)
def test_field_types_accept_spelled_out_names(spelling: str, expected: str) -> None:
    """The issue's spelled-out type names map onto the one-word identifiers."""
    assert parse_field_type(spelling) == expected


def test_unknown_field_type_lists_the_known_ones() -> None:
    """An unknown type is rejected, naming every accepted identifier."""
    with pytest.raises(InvalidValue, match="text, textarea, number"):
        parse_field_type("integer")


def test_field_definition_body_round_trips() -> None:
    """A body read by parse_field_definition renders back to the same body."""
    body = {
        "id": 10002,
        "name": "Colour",
        "type": "dropdown",
        "allowedValues": ["Red", "Green"],
        "min": None,
        "max": None,
        "required": True,
    }
    definition = parse_field_definition(body)
    assert definition == FieldDefinition(
        id=10002, name="Colour", type="dropdown", allowed_values=("Red", "Green"), required=True
    )
    assert definition.to_api_dict() == body


def test_number_bounds_render_as_integers() -> None:
    """Number bounds are whole numbers and render as JSON integers."""
    definition = parse_field_definition({"name": "Age", "type": "number", "min": "0", "max": 120})
    assert (definition.id, definition.min, definition.max) == (None, Decimal(0), Decimal(120))
    assert definition.to_api_dict()["max"] == 120


def test_field_definition_reports_every_problem() -> None:
    """Every wrong member of a definition body is reported at once."""
    with pytest.raises(ContactValidationError) as caught:
        parse_field_definition({"id": -1, "name": "", "type": "colour", "required": "maybe"})
    assert [v.field for v in caught.value.violations] == ["id", "name", "type", "required"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "c", "type": "dropdown"}, "allowedValues"),
        ({"name": "c", "type": "text", "allowedValues": ["a"]}, "allowedValues"),
        ({"name": "c", "type": "date", "min": 1}, "min"),
        ({"name": "c", "type": "number", "min": 1.5}, "min"),
        ({"name": "c", "type": "decimal", "min": 5, "max": 1}, "max"),
        ({"name": "c", "type": "checkbox", "allowedValues": ["a", "a"]}, "allowedValues"),
    ],
)
def test_field_definition_constraints(body: dict[str, object], field: str) -> None:
    """Choices need allowed values, ranges belong to numbers and min must not exceed max."""
    with pytest.raises(ContactValidationError) as caught:
        parse_field_definition(body, field_prefix="field")
    assert [v.field for v in caught.value.violations] == [f"field.{field}"]


def test_field_definition_body_must_be_an_object() -> None:
    """A list where the body belongs is one violation, not an exception."""
    with pytest.raises(ContactValidationError, match="must be a JSON object"):
        parse_field_definition(["name"])
