"""Additional field values: each type's rule, its normalised form and how it renders."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from server.contacts import FieldDefinition, InvalidValue, normalise_field_value, render_field_value
from server.contacts.definitions import FieldType
from server.contacts.field_values import _full_year


def _field(kind: FieldType, **constraints: object) -> FieldDefinition:
    return FieldDefinition(id=1, name="f", type=kind, **constraints)  # type: ignore[arg-type]


DROPDOWN = _field("dropdown", allowed_values=("Red", "Green", "Blue, dark"))
CHECKBOX = _field("checkbox", allowed_values=("sport", "music", "a, b"))


@pytest.mark.parametrize(
    "raw",
    [
        "2020-11-23",
        "23/11/2020",
        "23.11.20",
        "23.11.2020",
        "2020/11/23",
        " 2020-11-23 ",
    ],
)
def test_every_documented_date_format_normalises_to_iso(raw: str) -> None:
    """yyyy-MM-dd, dd/MM/yyyy, dd.MM.yy, dd.MM.yyyy and yyyy/MM/dd all give 2020-11-23."""
    value = normalise_field_value(raw, definition=_field("date"))
    assert value == date(2020, 11, 23)
    assert render_field_value(value) == "2020-11-23"


@pytest.mark.parametrize(
    "raw",
    ["2020-02-30", "31.04.2021", "23-11-2020", "23/11/20", "2020.11.23", "tomorrow", 20201123],
)
def test_impossible_or_undocumented_dates_are_rejected(raw: object) -> None:
    """Dates that do not exist or use no documented format are rejected."""
    with pytest.raises(InvalidValue, match="date"):
        normalise_field_value(raw, definition=_field("date"))


def test_day_and_month_may_drop_their_leading_zero() -> None:
    """5.1.2020 is read as 5 January 2020, like 05.01.2020."""
    assert normalise_field_value("5.1.2020", definition=_field("date")) == date(2020, 1, 5)


def test_two_digit_years_follow_javas_eighty_twenty_window() -> None:
    """dd.MM.yy picks the century within 80 years before and 20 after the current year."""
    assert _full_year(85, this_year=2026) == 1985
    assert _full_year(46, this_year=2026) == 2046
    assert _full_year(47, this_year=2026) == 1947
    assert _full_year(0, this_year=2026) == 2000


@pytest.mark.parametrize(
    ("raw", "expected", "rendered"),
    [
        ("2020-11-23T14:30", datetime(2020, 11, 23, 14, 30), "2020-11-23T14:30"),
        ("2020-11-23T14:30:15", datetime(2020, 11, 23, 14, 30, 15), "2020-11-23T14:30:15"),
        ("2020-11-23 14:30", datetime(2020, 11, 23, 14, 30), "2020-11-23T14:30"),
    ],
)
def test_datetimes_normalise_and_render(raw: str, expected: datetime, rendered: str) -> None:
    """YYYY-MM-DDTHH:MM, optionally with seconds, becomes a datetime and renders back."""
    value = normalise_field_value(raw, definition=_field("datetime"))
    assert value == expected
    assert render_field_value(value) == rendered


@pytest.mark.parametrize(
    "raw", ["2020-11-23", "2020-11-23T25:00", "2020-11-23T14:30+02:00", "2020-11-23T14:30:00.5"]
)
def test_malformed_datetimes_are_rejected(raw: str) -> None:
    """Dates without time, impossible hours, zones and fractions are rejected."""
    with pytest.raises(InvalidValue, match="date and time"):
        normalise_field_value(raw, definition=_field("datetime"))


def test_text_and_textarea_lengths() -> None:
    """Text holds up to 1,000 characters, text area up to 5,000."""
    assert normalise_field_value("x" * 1000, definition=_field("text")) == "x" * 1000
    assert normalise_field_value("x" * 5000, definition=_field("textarea")) == "x" * 5000
    with pytest.raises(InvalidValue, match="at most 1000"):
        normalise_field_value("x" * 1001, definition=_field("text"))
    with pytest.raises(InvalidValue, match="at most 5000"):
        normalise_field_value("x" * 5001, definition=_field("textarea"))


def test_numbers_are_32_bit_integers_within_their_range() -> None:
    """Number fields take whole numbers in the 32-bit range and the field's min/max."""
    ranged = _field("number", min=Decimal(1), max=Decimal(10))
    assert normalise_field_value("7", definition=ranged) == 7
    assert normalise_field_value(7.0, definition=ranged) == 7
    assert normalise_field_value(2**31 - 1, definition=_field("number")) == 2**31 - 1
    for raw, reason in [
        (2**31, "32-bit"),
        (11, "range 1..10"),
        ("7.5", "whole"),
        (True, "boolean"),
    ]:
        with pytest.raises(InvalidValue, match=reason):
            normalise_field_value(raw, definition=ranged)


def test_decimals_within_their_range() -> None:
    """Decimal fields take finite numbers or numeric text, checked against min/max."""
    ranged = _field("decimal", min=Decimal("0.5"))
    assert normalise_field_value("12.50", definition=ranged) == Decimal("12.50")
    assert normalise_field_value(0.5, definition=ranged) == Decimal("0.5")
    assert render_field_value(Decimal("12.50")) == "12.50"
    for raw, reason in [
        ("0.1", "range"),
        ("12,5", "dot"),
        ("NaN", "decimal"),
        (float("inf"), "finite"),
    ]:
        with pytest.raises(InvalidValue, match=reason):
            normalise_field_value(raw, definition=ranged)


def test_dropdown_takes_one_allowed_value() -> None:
    """A dropdown value must be one allowed value; case differences snap to its spelling."""
    assert normalise_field_value("Red", definition=DROPDOWN) == "Red"
    assert normalise_field_value("green", definition=DROPDOWN) == "Green"
    with pytest.raises(InvalidValue, match='choose one of "Red", "Green"'):
        normalise_field_value("Purple", definition=DROPDOWN)


def test_checkbox_takes_several_allowed_values_as_list_or_text() -> None:
    """Checkbox lists accept a list or comma-separated text, de-duplicated in order."""
    assert normalise_field_value(["music", "sport"], definition=CHECKBOX) == ("music", "sport")
    assert normalise_field_value("sport, music,sport", definition=CHECKBOX) == ("sport", "music")
    assert normalise_field_value("a, b", definition=CHECKBOX) == ("a, b",)
    assert render_field_value(("sport",)) == ["sport"]
    with pytest.raises(InvalidValue, match='"chess"'):
        normalise_field_value(["sport", "chess"], definition=CHECKBOX)
    with pytest.raises(InvalidValue, match="list"):
        normalise_field_value({"sport": True}, definition=CHECKBOX)


def test_tags_accept_lists_and_comma_separated_text() -> None:
    """Tags come as a list or comma-separated text; blanks dropped, repeats removed."""
    tags = _field("tags")
    assert normalise_field_value("vip, new,,vip", definition=tags) == ("vip", "new")
    assert normalise_field_value(["vip", "a,b"], definition=tags) == ("vip", "a", "b")
    with pytest.raises(InvalidValue, match="at most 100"):
        normalise_field_value(["x" * 101], definition=tags)


@pytest.mark.parametrize("raw", [None, "", "  ", []])
def test_empty_values_clear_the_field(raw: object) -> None:
    """Null, blank text and an empty list mean "no value" for every type that takes them."""
    kinds: tuple[FieldType, ...] = ("text", "date", "number", "tags")
    for kind in kinds:
        if raw == [] and kind != "tags":
            continue
        assert normalise_field_value(raw, definition=_field(kind)) is None
