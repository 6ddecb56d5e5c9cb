"""Dialect nodes for directives, comments and blocks (subclasses of airspeed's).

Velocity 1.7 behaviour reproduced here: ``#foreach($!item in ...)`` loop variables,
``$velocityCount``/``$foreach``/``#break``, loop variables restored after the loop
while ``#set`` stays global, null never assigned, ``#{else}``-style braces, macro
depth capped at 20 and unknown macros printed as text, and the whitespace rules:
a directive eats the spaces and newline ending its line, ``#set`` also eats the
indentation before it. ``#include`` and ``#parse`` are refused (no file access).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from server.errors import ReadOnlyError, RenderLimitExceeded
from server.templating import limits, values
from server.templating._airspeed import engine as _as
from server.templating.methods import get_property
from server.templating.nodes import IDENTIFIER, NoMatch, syntax_error
from server.templating.scopes import BreakLoop, ForeachScope, StopRender

END_OF_LINE = r"(?:[ \t\r]*\n)?"
WHITESPACE_TO_END_OF_LINE = _as.WHITESPACE_TO_END_OF_LINE


def assign(namespace: Any, name: str, value: object) -> None:
    """``#set($name = value)``: global, unless a macro argument or loop variable is named."""
    layer = namespace
    while isinstance(layer, _as.LocalNamespace):
        if dict.__contains__(layer, name):
            layer[name] = value
            return
        if not isinstance(layer.parent, _as.LocalNamespace):
            break
        layer = layer.parent
    layer.top()[name] = value


class Comment(_as.Comment):  # type: ignore[misc]
    """``## line`` eats its newline; ``#* block *#`` does not; an open block runs to the end."""

    COMMENT = re.compile(r"#(?:#[^\n]*(?:\n|\Z)|\*.*?(?:\*#|\Z))", re.DOTALL)


class ElseBlock(_as.ElseBlock):  # type: ignore[misc]
    """``#else`` / ``#{else}``, eating the rest of its line."""

    START = re.compile(r"#(?:else\b|\{else\})" + END_OF_LINE, re.DOTALL)


class ElseifBlock(_as.ElseifBlock):  # type: ignore[misc]
    """``#elseif(...)`` / ``#{elseif}(...)``."""

    START = re.compile(r"#(?:elseif\b|\{elseif\})\s*", re.DOTALL)


class IfDirective(_as.IfDirective):  # type: ignore[misc]
    """``#if`` with Velocity truth: only null and false are false."""

    START = re.compile(r"#(?:if\b|\{if\})\s*", re.DOTALL)

    def evaluate_raw(self, stream: Any, namespace: Any, loader: Any) -> None:
        if values.truthy(self.condition.calculate(namespace, loader)):
            self.block.evaluate(stream, namespace, loader)
            return
        for branch in self.elseifs:
            if values.truthy(branch.calculate(namespace, loader)):
                branch.evaluate(stream, namespace, loader)
                return
        self.else_block.evaluate(stream, namespace, loader)


class SetDirective(_as.SetDirective):  # type: ignore[misc]
    """``#set``: a null value leaves the variable alone; event data cannot be written."""

    START = re.compile(r"#(?:set|\{set\})\s*\(", re.DOTALL)
    PLACE = re.compile(rf"\s*\$!?\{{?({IDENTIFIER}(?:\.[a-zA-Z][a-zA-Z0-9_-]*)*)\}}?", re.DOTALL)

    def evaluate_raw(self, stream: Any, namespace: Any, loader: Any) -> None:
        value = self.value.calculate(namespace, loader)
        if value is None:
            return
        if len(self.terms) == 1:
            assign(namespace, self.terms[0], value)
            return
        try:
            target = namespace[self.terms[0]]
        except KeyError:
            return
        for term in self.terms[1:-1]:
            target = get_property(target, term)
        if type(target) is values.FrozenMap:
            raise ReadOnlyError()
        if type(target) is dict:
            target[self.terms[-1]] = value


class ForeachDirective(_as.ForeachDirective):  # type: ignore[misc]
    """``#foreach``: ``$!item``/``${item}`` loop variables, Velocity's counters, ``#break``."""

    START = re.compile(r"#(?:foreach\b|\{foreach\})", re.DOTALL)
    LOOP_VAR_NAME = re.compile(rf"\$!?\{{?({IDENTIFIER})\}}?", re.DOTALL)

    def parse(self) -> None:
        self.identity_match(self.START)
        self.require_match(self.OPEN_PAREN, "(")
        (self.loop_var_name,) = self.require_match(self.LOOP_VAR_NAME, "loop variable")
        self.require_match(self.IN, "in")
        self.value = self.require_next_element(_as.Value, "value to loop over")
        self.require_match(self.CLOSE_PAREN, ")")
        self.optional_match(WHITESPACE_TO_END_OF_LINE)
        self.block = self.require_next_element(_as.Block, "block")
        self.require_next_element(_as.End, "#end")

    def evaluate_raw(self, stream: Any, namespace: Any, loader: Any) -> None:
        items = self.value.calculate(namespace, loader)
        if isinstance(items, dict):
            items = list(items.values())
        elif not isinstance(items, list):
            return  # null, strings and numbers are not iterable in Velocity: nothing happens
        items = tuple(items)
        try:
            parent = namespace["foreach"]
        except KeyError:
            parent = None
        scope = ForeachScope(size=len(items), parent=parent)
        # A loop layer holds the loop's own variables, so the outer values come back after it.
        layer = _as.LocalNamespace(namespace)
        layer["foreach"] = scope
        budget = limits.current()
        name = self.loop_var_name
        block = self.block
        try:
            for index, item in enumerate(items):
                budget.check_time()
                scope.index = index
                layer[name] = item
                layer["velocityCount"] = index + 1
                layer["velocityHasNext"] = index + 1 < len(items)
                block.evaluate(stream, layer, loader)
        except BreakLoop:
            pass


class BreakDirective(_as._Element):  # type: ignore[misc]
    """``#break``."""

    START = re.compile(r"#(?:break\b|\{break\})" + END_OF_LINE, re.DOTALL)

    def parse(self) -> None:
        self.identity_match(self.START)

    def evaluate_raw(self, stream: Any, namespace: Any, loader: Any) -> None:
        raise BreakLoop()


class StopDirective(_as.StopDirective):  # type: ignore[misc]
    """``#stop``: ends the render."""

    def evaluate_raw(self, stream: Any, namespace: Any, loader: Any) -> None:
        raise StopRender()


class MacroDefinition(_as.MacroDefinition):  # type: ignore[misc]
    """``#macro``: redefinable, lenient about argument counts (Velocity's default)."""

    START = re.compile(r"#(?:macro\b|\{macro\})", re.DOTALL)

    def evaluate_raw(self, stream: Any, namespace: Any, loader: Any) -> None:
        namespace.top()["#" + self.function_name.lower()] = self

    def execute_function(
        self, stream: Any, namespace: Any, args: list[object], loader: Any
    ) -> None:
        local = _as.LocalNamespace(namespace)
        for index, name in enumerate(self.arg_names):
            local[name] = args[index] if index < len(args) else None
        self.block.evaluate(stream, local, loader)


class MacroCall(_as.MacroCall):  # type: ignore[misc]
    """``#name(args)``: depth-limited; text as written when no such macro exists."""

    def parse(self) -> None:
        try:
            super().parse()
        except _as.TemplateSyntaxError:
            # "#hashtag(s)" is text to Velocity, not a broken macro call.
            raise NoMatch() from None
        self.optional_match(WHITESPACE_TO_END_OF_LINE)

    def evaluate_raw(self, stream: Any, namespace: Any, loader: Any) -> None:
        try:
            macro = namespace["#" + self.macro_name]
        except KeyError:
            stream.write(self.my_text())
            return
        budget = limits.current()
        if budget.macro_depth >= limits.MAX_MACRO_DEPTH:
            raise RenderLimitExceeded(
                f"macro #{self.macro_name} nests deeper than {limits.MAX_MACRO_DEPTH} calls"
            )
        budget.check_time()
        args = [arg.calculate(namespace, loader) for arg in self.args]
        budget.macro_depth += 1
        try:
            macro.execute_function(stream, namespace, args, loader)
        except BreakLoop:
            pass
        finally:
            budget.macro_depth -= 1


class EvaluateDirective(_as.EvaluateDirective):  # type: ignore[misc]
    """``#evaluate``: eats the rest of its line; nesting counts against the macro depth."""

    CLOSE_PAREN = re.compile(r"\s*\)" + END_OF_LINE, re.DOTALL)

    def evaluate_raw(self, stream: Any, namespace: Any, loader: Any) -> None:
        budget = limits.current()
        if budget.macro_depth >= limits.MAX_MACRO_DEPTH:
            raise RenderLimitExceeded(f"#evaluate nests deeper than {limits.MAX_MACRO_DEPTH}")
        budget.macro_depth += 1
        try:
            super().evaluate_raw(stream, namespace, loader)
        finally:
            budget.macro_depth -= 1


class IncludeDirective(_as.IncludeDirective):  # type: ignore[misc]
    """``#include`` would read files: refused when the template is compiled."""

    def parse(self) -> None:
        self.identity_match(self.START)
        raise syntax_error(self, "#include is not available in message templates")


class ParseDirective(_as.ParseDirective):  # type: ignore[misc]
    """``#parse`` would read files: refused when the template is compiled."""

    def parse(self) -> None:
        self.identity_match(self.START)
        raise syntax_error(self, "#parse is not available in message templates")


class FallthroughHashText(_as.FallthroughHashText):  # type: ignore[misc]
    """A ``#`` that starts no directive; a broken directive is a syntax error, not text."""

    MALFORMED = re.compile(r"#\{?(if|foreach|set|macro|define|evaluate)\b\}?\s*\(")

    def parse(self) -> None:
        broken = self.MALFORMED.match(self._full_text, self.end)
        if broken:
            raise syntax_error(self, f"malformed #{broken.group(1)} directive")
        super().parse()


class Block(_as.Block):  # type: ignore[misc]
    """A run of template elements; applies Velocity's ``#set`` indentation rule."""

    def parse(self) -> None:
        super().parse()
        children = self.children
        for i in range(1, len(children)):
            if not isinstance(children[i], SetDirective) or not isinstance(
                children[i - 1], _as.Text
            ):
                continue
            # Velocity's lexer folds blanks before #set into the directive when they
            # follow a reference or directive (or open the block), not when they
            # end a run of text, even one ending in a newline.
            after_other = i == 1 or not isinstance(children[i - 2], _as.Text)
            if after_other and children[i - 1].text.strip(" \t") == "":
                children[i - 1].text = ""


class TemplateBody(_as.TemplateBody):  # type: ignore[misc]
    """The whole template; its macros exist from the start, as Velocity defines them when parsing."""

    def parse(self) -> None:
        super().parse()
        self.macros = list(_macro_definitions(self.block))

    def evaluate_raw(self, stream: Any, namespace: Any, loader: Any) -> None:
        if not isinstance(namespace, _as.LocalNamespace):
            namespace = _as.LocalNamespace(namespace)
        top = namespace.top()
        for macro in self.macros:
            top.setdefault("#" + macro.function_name.lower(), macro)
        self.block.evaluate(stream, namespace, loader)


def _macro_definitions(element: Any) -> Iterator[Any]:
    if isinstance(element, MacroDefinition):
        yield element
        return
    for value in vars(element).values():
        for child in value if isinstance(value, list) else (value,):
            if isinstance(child, _as._Element):
                yield from _macro_definitions(child)
