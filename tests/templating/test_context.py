"""eSputnik's rendering context: data from event params or from one JSON param."""

from __future__ import annotations

import pytest

from server.templating import WrongFormat, build_context, render


def test_params_become_data() -> None:
    """Without a JSON param, data is the params as an object."""
    context = build_context(params=[("email", "a@b.c"), ("password", "secret")], json_param=None)
    assert render("$data.get('email') $data.password", context) == "a@b.c secret"


def test_params_may_be_a_mapping() -> None:
    """Params given as a dict work like name/value pairs."""
    assert render("$data.x", build_context(params={"x": 1}, json_param=None)) == "1"


def test_json_param_object_becomes_data() -> None:
    """The named param's object value is data."""
    context = build_context(params=[("items", {"array": [1, 2]})], json_param="items")
    assert render("$data.array.size()", context) == "2"


def test_json_param_string_is_parsed() -> None:
    """A v1 string value holding JSON is parsed, with Java-like numbers."""
    context = build_context(params=[("items", '{"price": 2.50, "qty": 341}')], json_param="items")
    assert render("$data.price $data.qty", context) == "2.5 341"


def test_unparsable_json_is_wrong_format() -> None:
    """A JSON param whose text does not parse raises WrongFormat."""
    with pytest.raises(WrongFormat):
        build_context(params=[("items", "{not json")], json_param="items")


def test_missing_json_param_is_wrong_format() -> None:
    """Naming a param the event lacks raises WrongFormat."""
    with pytest.raises(WrongFormat):
        build_context(params=[("email", "a@b.c")], json_param="items")


def test_variables_are_case_sensitive() -> None:
    """ImageUrl does not find imageurl."""
    context = build_context(params=[("imageurl", "x.jpg")], json_param=None)
    assert render("[$!data.get('ImageUrl')][$!data.get('imageurl')]", context) == "[][x.jpg]"


def test_param_without_value_is_null() -> None:
    """A param whose value is not JSON (the ingest layer's missing marker) is null."""
    context = build_context(params=[("a", object()), ("b", 1)], json_param=None)
    assert render("[$!data.a][$data.b]", context) == "[][1]"
