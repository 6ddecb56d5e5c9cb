"""The public surface of server.templating and its error objects."""

from __future__ import annotations

import pytest

from server import templating
from server.templating import TemplateError, WrongFormat, compile_template, render


def test_public_names_are_pinned() -> None:
    """The package exports exactly the documented names."""
    assert sorted(templating.__all__) == [
        "CompiledTemplate",
        "RenderLimitExceeded",
        "TemplateError",
        "WrongFormat",
        "build_context",
        "compile_template",
        "render",
    ]


def test_compiled_templates_are_cached_by_text() -> None:
    """Compiling the same text twice reuses the parsed template."""
    assert compile_template("Hi $name") is compile_template("Hi $name")


def test_compiled_template_renders_many_contexts() -> None:
    """One compiled template renders against different contexts."""
    template = compile_template("Hi $name")
    assert template.render({"name": "Ann"}) == "Hi Ann"
    assert template.render({"name": "Bob"}) == "Hi Bob"


def test_syntax_error_has_line_column_and_reason() -> None:
    """A syntax error reports where it is and why, in a readable sentence."""
    with pytest.raises(TemplateError) as caught:
        compile_template("line one\n#if($x)open")
    error = caught.value
    assert (error.line, error.column) == (2, 12)
    assert "#end" in error.reason
    assert str(error).startswith("Template error at line 2, column 12: ")


def test_wrong_format_is_a_template_error() -> None:
    """WrongFormat is caught by handlers of TemplateError and says Wrong Format."""
    error = WrongFormat("Expecting value")
    assert isinstance(error, TemplateError)
    assert "Wrong Format" in str(error)
    assert error.line is None


def test_render_compiles_and_renders() -> None:
    """render() is compile plus render in one call."""
    assert render("$!data.get('password')", {"data": {"password": "12345678"}}) == "12345678"
