"""Errors say where and why: syntax errors, failing references, broken directives."""

from __future__ import annotations

import pytest

from server.templating import TemplateError, compile_template, render


@pytest.mark.parametrize(
    ("template", "line", "column"),
    [
        ("#foreach($i in )x#end", 1, 16),
        ("ok\n#foreach($i $list)x#end", 2, 12),
        ("#if()x#end", 1, 1),
        ("a\n\n#set($x = 1\nb", 3, 12),
        ("#foreach($i in $l)x", 1, 20),
        ("text #end", 1, 6),
        ("${name", 1, 7),
    ],
)
def test_syntax_errors_point_at_the_problem(template: str, line: int, column: int) -> None:
    """Broken directives are syntax errors with their line and column."""
    with pytest.raises(TemplateError) as caught:
        compile_template(template)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert caught.value.reason


def test_index_out_of_range_is_an_error() -> None:
    """get(5) on a two-item list fails the render at that reference."""
    with pytest.raises(TemplateError) as caught:
        render("Hello\n  $list.get(5)", {"list": [1, 2]})
    assert (caught.value.line, caught.value.column) == (2, 3)
    assert "Index 5 out of bounds for length 2" in str(caught.value)


def test_substring_out_of_range_is_an_error() -> None:
    """A failing String method fails the render, as in Velocity."""
    with pytest.raises(TemplateError, match="substring"):
        render("$s.substring(2, 10)", {"s": "hello"})


def test_unknown_method_renders_as_written() -> None:
    """An unknown method is a null reference: printed as written, or nothing when quiet."""
    assert render("$s.nope() [$!s.nope()]", {"s": "x"}) == "$s.nope() []"


def test_failure_inside_string_literal_points_at_the_literal() -> None:
    """An error while interpolating a string reports the #set, in template coordinates."""
    with pytest.raises(TemplateError) as caught:
        render('a\n#set($x = "$l.get(3)")', {"l": []})
    assert caught.value.line == 2


@pytest.mark.parametrize("template", ["#foreach($i in )x#end", "#if()x#end", "#include('x')"])
def test_syntax_error_reasons_say_so(template: str) -> None:
    """Every compile-time error's reason starts with 'syntax error'."""
    with pytest.raises(TemplateError) as caught:
        compile_template(template)
    assert caught.value.reason.startswith("syntax error")
