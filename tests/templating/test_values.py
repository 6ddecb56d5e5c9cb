"""Java-like printing and arithmetic of values."""

from __future__ import annotations

import pytest

from server.templating import render
from server.templating.values import java_double, java_str


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (2.5, "2.5"),
        (2.0, "2.0"),
        (1.5e10, "1.5E10"),
        (0.0001, "1.0E-4"),
        (0.001, "0.001"),
        (12345678.9, "1.23456789E7"),
        (-0.0, "-0.0"),
        (1234567.0, "1234567.0"),
        (1e7, "1.0E7"),
        (0.30000000000000004, "0.30000000000000004"),
        (-3.5e-5, "-3.5E-5"),
    ],
)
def test_doubles_print_like_java(value: float, text: str) -> None:
    """Floats print as Double.toString does."""
    assert java_double(value) == text


def test_collections_print_like_java() -> None:
    """Lists, maps, booleans and nulls print as Java's toString."""
    assert java_str({"a": [1, None, True], "b": 2.5}) == "{a=[1, null, true], b=2.5}"


@pytest.mark.parametrize(
    ("expression", "result"),
    [
        ("7 / 2", "3"),
        ("-7 / 2", "-3"),
        ("-7 % 3", "-1"),
        ("10 / 4.0", "2.5"),
        ("'n' + 1", "n1"),
        ("2147483647 + 1", "2147483648"),
        ("1.5 + 1.5", "3.0"),
    ],
)
def test_arithmetic_is_java_like(expression: str, result: str) -> None:
    """Integer division truncates, remainders keep the dividend's sign, + concatenates."""
    assert render(f"#set($r = {expression})$r", {}) == result


def test_division_by_zero_leaves_variable_unchanged() -> None:
    """A null result (division by zero) does not overwrite the variable."""
    assert render("#set($r = 1)#set($r = 1 / 0)$r", {}) == "1"


def test_empty_string_and_zero_are_true() -> None:
    """Only null and false are false in #if."""
    assert (
        render(
            "#if($e)a#end#if($z)b#end#if($n)c#end#if($f)d#end",
            {"e": "", "z": 0, "n": None, "f": False},
        )
        == "ab"
    )
