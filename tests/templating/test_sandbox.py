"""Sandbox: templates reach no Python internals, change no data and stay bounded."""

from __future__ import annotations

import time

import pytest

from server.templating import RenderLimitExceeded, TemplateError, compile_template, render

DATA = {"data": {"list": [1, 2], "map": {"a": 1}, "word": "hello"}}


@pytest.mark.parametrize(
    "template",
    [
        "$data.__class__",
        "$data.__class__.__mro__",
        "$data.word.__len__()",
        "$data._private",
        "$data.getClass()",
        "$data.word.format('x')",
        "$data.keys()",
        "$data.word.join('ab')",
    ],
)
def test_no_python_attributes_or_methods(template: str) -> None:
    """Underscore names are plain text and only listed Java methods exist."""
    out = render(template, DATA)
    assert "class" not in out.replace("__class__", "") and "built-in" not in out
    assert "<" not in out


def test_underscore_names_after_a_dot_are_text() -> None:
    """'$data.__class__' prints the data and then the text, as Velocity does."""
    assert render("$data.word.__class__", DATA) == "hello.__class__"


def test_no_python_builtins() -> None:
    """Builtin names are undefined references."""
    assert render("$!len $!open $!__builtins__ $!eval", DATA) == "   "


@pytest.mark.parametrize(
    "template",
    [
        "$data.map.clear()",
        "$data.map.put('b', 2)",
        "$data.list.add(3)",
        "$data.list.remove(0)",
        "#set($data.map.a = 5)",
        "#set($m = $data.map)$m.put('z', 1)",
    ],
)
def test_event_data_is_read_only(template: str) -> None:
    """Mutating event data fails the render and leaves the data unchanged."""
    context = {"data": {"list": [1, 2], "map": {"a": 1}}}
    with pytest.raises(TemplateError, match="read-only"):
        render(template, context)
    assert context == {"data": {"list": [1, 2], "map": {"a": 1}}}


def test_template_made_collections_are_mutable() -> None:
    """Lists and maps built by the template itself can be changed."""
    assert render("#set($l = [])$l.add(1)$l #set($m = {})#set($m.k = 2)$m", {}) == "true[1]{k=2}"


@pytest.mark.parametrize("directive", ["#include('/etc/passwd')", "#parse('/etc/passwd')"])
def test_no_file_access(directive: str) -> None:
    """#include and #parse are refused when the template is compiled."""
    with pytest.raises(TemplateError, match="not available"):
        compile_template(directive)


def test_huge_range_fails_fast() -> None:
    """A #foreach over [1..100000000] ends with a clear error at once."""
    started = time.monotonic()
    with pytest.raises(RenderLimitExceeded, match="range"):
        render("#foreach($i in [1..100000000])x#end", {})
    assert time.monotonic() - started < 0.5


def test_runaway_macro_recursion_fails_fast() -> None:
    """Unbounded #macro recursion stops at Velocity's depth of 20."""
    started = time.monotonic()
    with pytest.raises(RenderLimitExceeded, match="deeper than 20"):
        render("#macro(f $n)#f($n)#end#f(1)", {})
    assert time.monotonic() - started < 0.5


def test_output_size_is_bounded() -> None:
    """Output beyond max_output fails the render."""
    with pytest.raises(RenderLimitExceeded, match="output exceeds"):
        render("#foreach($i in [1..1000])xxxxxxxxxx#end", {}, max_output=5000)


def test_string_doubling_is_bounded() -> None:
    """Growing a string exponentially in #set stops at the output limit."""
    with pytest.raises(RenderLimitExceeded):
        render('#set($s = "x")#foreach($i in [1..40])#set($s = "$s$s")#end', {}, max_output=10_000)


def test_render_time_is_bounded() -> None:
    """Nested loops that would run for minutes stop at the timeout."""
    started = time.monotonic()
    with pytest.raises(RenderLimitExceeded, match="too long"):
        render("#foreach($a in [1..10000])#foreach($b in [1..10000])#end#end", {}, timeout=0.2)
    assert time.monotonic() - started < 1.0


def test_catastrophic_regex_runs_in_linear_time() -> None:
    """Patterns that backtrack exponentially in Java or Python's re answer at once (RE2)."""
    assert render("$s.matches('(a+)+$') $s.matches('(a|a)*b')", {"s": "a" * 40 + "!"}) == (
        "false false")


def test_backtracking_only_regex_is_refused_plainly() -> None:
    """Back-references need backtracking: refused with a message saying so."""
    with pytest.raises(TemplateError, match="back-references and look-around"):
        render("$s.replaceAll('(a)\\1', 'b')", {"s": "aa"})


def test_replace_growth_is_bounded() -> None:
    """replace() cannot build a gigantic string."""
    with pytest.raises(TemplateError, match="exceeds"):
        render("$s.replace('', $s)", {"s": "x" * 10_000})


def test_context_objects_must_be_json_like() -> None:
    """Arbitrary Python objects cannot be handed to a template."""
    with pytest.raises(TypeError):
        render("$x", {"x": object()})


def test_concatenation_is_bounded() -> None:
    """Doubling a string with + stops with a limit error instead of exhausting memory."""
    with pytest.raises(RenderLimitExceeded):
        render("#set($s = 'xx')#foreach($i in [1..64])#set($s = $s + $s)#end", {})


def test_self_containing_list_fails_safely() -> None:
    """Printing a list that contains itself is an error, not a crash."""
    with pytest.raises(TemplateError):
        render("#set($l = [])$l.add($l)$l", {})


def test_concat_method_is_bounded_before_building() -> None:
    """`concat` in a doubling loop stops at the string limit."""
    with pytest.raises(RenderLimitExceeded, match="string longer than"):
        render("#set($s = 'ab')#foreach($i in [1..40])#set($s = $s.concat($s))#end", {})


def test_printing_a_list_of_long_strings_is_bounded() -> None:
    """A list holding many long strings fails to print instead of being joined whole."""
    template = ("#set($s = 'ab')#foreach($i in [1..16])#set($s = $s.concat($s))#end"
                "#set($l = [])#foreach($i in [1..20])#set($d = $l.add($s))#end$l")
    with pytest.raises(RenderLimitExceeded, match="string longer than"):
        render(template, {})


@pytest.mark.parametrize("template", [
    "#set($x = 3)#foreach($i in [1..40])#set($x = $x * $x)#end",
    "#set($x = 2)#foreach($i in [1..13])#set($x = $x * $x)#end#set($y = $x + $x)",
])
def test_integer_growth_is_bounded(template: str) -> None:
    """Integer arithmetic past 4096 bits is refused before it is computed."""
    with pytest.raises(RenderLimitExceeded, match="wider than 4096 bits"):
        render(template, {})


def test_split_and_replace_follow_java() -> None:
    """split drops captured groups and trailing empties; replaceAll reads $n as Java does."""
    assert render("$s.split('(-)') $s.split('-').size() $s.replaceAll('(b)(-)', '$2$1$12')",
                  {"s": "a-b--"}) == "[a, b] 2 a--bb2-"
