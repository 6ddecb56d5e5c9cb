"""Dialect nodes for references, literals and expressions (subclasses of airspeed's).

What changes from stock airspeed, each as Velocity 1.7 does it: references resolve
through Java method tables instead of Python attributes; ``$x`` prints as Java
would; ``\\$x`` escapes depend on whether ``$x`` is defined; string literals have
no backslash escapes; there is no ``null`` literal; operators follow Java's
precedence, truth and arithmetic, with ``&&``/``||`` short-circuiting.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from server.errors import TemplateError
from server.templating import limits, values
from server.templating._airspeed import engine as _as
from server.templating.methods import (
    InvocationError,
    NoSuchMethod,
    call_method,
    get_index,
    get_property,
)

NoMatch = _as.NoMatch
IDENTIFIER = r"[a-zA-Z_][a-zA-Z0-9_-]*"


def position(element: Any) -> tuple[int, int]:
    """1-based line and column where ``element`` starts in its text."""
    before = element.full_text()[: element.start]
    return before.count("\n") + 1, element.start - before.rfind("\n")


def syntax_error(element: Any, reason: str) -> TemplateError:
    """A TemplateError pointing at ``element``."""
    line, column = position(element)
    return TemplateError(f"syntax error, {reason}", line=line, column=column)


class Text(_as.Text):  # type: ignore[misc]
    """Plain text; stops before ``\\$ref`` so escaped references get their own node."""

    PLAIN = re.compile(
        r"((?:[^\\$#]+|\\#|\\(?!\\*\$!?\{?[a-zA-Z_]))+"
        r"|\$(?![!{a-zA-Z_])|\$!?\{(?![a-zA-Z_])|#$|#[^{}a-zA-Z0-9#*]+)",
        re.DOTALL,
    )
    # Only an escaped directive loses its backslash: "\#if" is "#if", "\# x" stays.
    ESCAPED_CHAR = re.compile(
        r"\\(#\{?(?:if|elseif|else|end|foreach|set|macro|define|evaluate|include|parse"
        r"|break|stop)\b)"
    )


class NameOrCall(_as.NameOrCall):  # type: ignore[misc]
    """One step of a reference: ``name``, ``name(args)`` or ``name[index]``.

    The head of ``$name(...)`` is never a call in Velocity (the parenthesis is
    text), and names after a dot may not start with ``_``, which is also what
    keeps ``$x.__class__`` out of Python's internals.
    """

    NAME = re.compile(f"({IDENTIFIER})")
    head = False

    def parse(self) -> None:
        (self.name,) = self.identity_match(self.NAME)
        self.head = self._full_text[self.start - 1] != "."
        if not self.head and self.name.startswith("_"):
            raise NoMatch()
        if not self.head:
            try:
                self.parameters = self.next_element(_as.ParameterList)
                return
            except NoMatch:
                pass
        try:
            self.index = self.next_element(_as.ArrayIndex)
        except NoMatch:
            pass

    def calculate(self, current: Any, loader: Any, top: Any) -> object:
        if self.head:
            try:
                value = current[self.name]
            except KeyError:
                return None
            if isinstance(value, _as._FunctionDefinition):
                value = _render_define(value, top, loader)
        elif current is None:
            return None
        elif self.parameters is not None:
            args = self.parameters.calculate(top, loader)
            try:
                value = call_method(current, self.name, args)
            except NoSuchMethod:
                return None
        else:
            value = get_property(current, self.name)
        if self.index is not None and value is not None:
            value = get_index(value, self.index.calculate(top, loader))
        return value


def _render_define(definition: Any, namespace: Any, loader: Any) -> str:
    stream = limits.BoundedStream()
    definition.execute_function(stream, namespace, [], loader)
    return stream.getvalue()


class SubExpression(_as.SubExpression):  # type: ignore[misc]
    """``.name...`` or ``[index]`` after a reference step."""

    def calculate(self, current: Any, loader: Any, top: Any) -> object:
        if not isinstance(self.expression, _as.ArrayIndex):
            return self.expression.calculate(current, loader, top)
        value = (
            None if current is None else get_index(current, self.expression.calculate(top, loader))
        )
        if self.subexpression is not None:
            value = self.subexpression.calculate(value, loader, top)
        return value


class FormalReference(_as.FormalReference):  # type: ignore[misc]
    """``$x``, ``$!x``, ``${x}``, ``$!{x}``: Java printing, literal text when null."""

    def evaluate_raw(self, stream: Any, namespace: Any, loader: Any) -> None:
        if self.expression is None:
            # A lone "$" or "$!" is text; Velocity drops the "!".
            stream.write("$")
            return
        value = self.expression.calculate(namespace, loader)
        if value is None:
            stream.write("" if self.silent else self.my_text())
        elif type(value) is str:
            stream.write(value)
        else:
            stream.write(values.java_str(value))


class EscapedReference(_as._Element):  # type: ignore[misc]
    """``\\$x``: Velocity 1.7 prints ``$x`` when x is defined, ``\\$x`` when it is not."""

    START = re.compile(r"(\\+)(?=\$!?\{?[a-zA-Z_])")

    def parse(self) -> None:
        (slashes,) = self.identity_match(self.START)
        self.slashes = len(slashes)
        self.reference = self.next_element(FormalReference)

    def evaluate_raw(self, stream: Any, namespace: Any, loader: Any) -> None:
        reference = self.reference
        value = None
        if reference.expression is not None:
            value = reference.expression.calculate(namespace, loader)
        # Velocity 1.7: an odd run escapes the reference and keeps half the backslashes
        # (one more when the reference is undefined); an even run is halved before a
        # value and kept whole before an undefined reference.
        half = "\\" * (self.slashes // 2)
        if self.slashes % 2:
            stream.write(half + ("\\" if value is None else "") + reference.my_text())
        elif value is None:
            stream.write("\\" * self.slashes + reference.my_text())
        else:
            stream.write(half + values.java_str(value))


class StringLiteral(_as.StringLiteral):  # type: ignore[misc]
    """``'text'``: no escapes except a doubled quote."""

    STRING = re.compile(r"'((?:[^']|'')*)'", re.DOTALL)

    def parse(self) -> None:
        (raw,) = self.identity_match(self.STRING)
        self.value = raw.replace("''", "'")


class InterpolatedStringLiteral(_as.InterpolatedStringLiteral):  # type: ignore[misc]
    """``"text $ref"``: rendered like a template, output capped by the sandbox."""

    STRING = re.compile(r'"((?:[^"]|"")*)"', re.DOTALL)

    def parse(self) -> None:
        (raw,) = self.identity_match(self.STRING)
        self.value = raw.replace('""', '"')
        self.constant = not any(ch in self.value for ch in "$#\\")
        self.block = None if self.constant else _as.Block(self.filename, self.value, 0)

    def calculate(self, namespace: Any, loader: Any) -> object:
        if self.block is None:
            return self.value
        stream = limits.BoundedStream()
        try:
            self.block.evaluate(stream, namespace, loader)
        except _as.TemplateExecutionError as error:
            # Report the failure at the string literal, whose position is in the template.
            raise error.__cause__ from None
        return stream.getvalue()


class BooleanLiteral(_as.BooleanLiteral):  # type: ignore[misc]
    """``true`` and ``false``, lower case only."""

    BOOLEAN = re.compile(r"(true|false)\b")


class AlternateValue(_as.AlternateValue):  # type: ignore[misc]
    """``${x|default}`` is Velocity 2.0 syntax; in 1.7 it is a syntax error."""

    def parse(self) -> None:
        raise NoMatch()


class NullLiteral(_as.NullLiteral):  # type: ignore[misc]
    """Velocity 1.7 has no ``null`` literal; the word is a syntax error."""

    def parse(self) -> None:
        raise NoMatch()


class Range(_as.Range):  # type: ignore[misc]
    """``[a..b]``: a list of integers, bounded by the sandbox."""

    def calculate(self, namespace: Any, loader: Any) -> object:
        first = self.value1.calculate(namespace, loader)
        last = self.value2.calculate(namespace, loader)
        if type(first) is not int or type(last) is not int:
            raise InvocationError("range bounds must be integers")
        limits.check_range(abs(last - first) + 1)
        step = 1 if last >= first else -1
        return list(range(first, last + step, step))


_OPERATORS: dict[str, Callable[[object, object], object]] = {
    "+": values.add,
    "-": values.subtract,
    "*": values.multiply,
    "/": values.divide,
    "%": values.modulo,
    "==": values.velocity_equals,
    "!=": lambda a, b: not values.velocity_equals(a, b),
    "<": lambda a, b: (values.compare(a, b) or 0) < 0,
    ">": lambda a, b: (values.compare(a, b) or 0) > 0,
    "<=": lambda a, b: values.compare(a, b) in (-1, 0),
    ">=": lambda a, b: values.compare(a, b) in (0, 1),
}
_WORDS = {
    "gt": ">",
    "lt": "<",
    "ge": ">=",
    "le": "<=",
    "eq": "==",
    "ne": "!=",
    "and": "&&",
    "or": "||",
}
# Higher binds tighter, as in Velocity's grammar.
_PRECEDENCE = {
    "||": 1,
    "&&": 2,
    "==": 3,
    "!=": 3,
    "<": 4,
    ">": 4,
    "<=": 4,
    ">=": 4,
    "+": 5,
    "-": 5,
    "*": 6,
    "/": 6,
    "%": 6,
}


class BinaryOperator(_as.BinaryOperator):  # type: ignore[misc]
    """An infix operator, symbolic or word (``gt``, ``and``...)."""

    BINARY_OP = re.compile(
        r"\s*(>=|<=|==|!=|<|>|%|\|\||&&|\+|-|\*|/|(?:or|and|gt|lt|ge|le|eq|ne)\b)\s*", re.DOTALL
    )

    def parse(self) -> None:
        (symbol,) = self.identity_match(self.BINARY_OP)
        self.symbol = _WORDS.get(symbol, symbol)
        self.precedence = _PRECEDENCE[self.symbol]


class _Operation:
    """A node of the expression tree built from airspeed's flat operand/operator list."""

    __slots__ = ("apply", "left", "right", "symbol")

    def __init__(self, symbol: str, left: Any, right: Any) -> None:
        self.symbol = symbol
        self.left = left
        self.right = right
        self.apply = _OPERATORS.get(symbol)

    def calculate(self, namespace: Any, loader: Any) -> object:
        left = self.left.calculate(namespace, loader)
        if self.symbol == "&&":
            return values.truthy(left) and values.truthy(self.right.calculate(namespace, loader))
        if self.symbol == "||":
            return values.truthy(left) or values.truthy(self.right.calculate(namespace, loader))
        return self.apply(left, self.right.calculate(namespace, loader))  # type: ignore[misc]


class Expression(_as.Expression):  # type: ignore[misc]
    """An operator expression, evaluated by precedence with short-circuit logic."""

    def parse(self) -> None:
        super().parse()
        items = self.expression
        operands: list[Any] = [items[0]]
        operators: list[Any] = []
        for operator, operand in zip(items[1::2], items[2::2]):
            while operators and operators[-1].precedence >= operator.precedence:
                _reduce(operands, operators)
            operators.append(operator)
            operands.append(operand)
        while operators:
            _reduce(operands, operators)
        self.tree = operands[0]

    def calculate(self, namespace: Any, loader: Any) -> object:
        return self.tree.calculate(namespace, loader)


def _reduce(operands: list[Any], operators: list[Any]) -> None:
    right = operands.pop()
    left = operands.pop()
    operands.append(_Operation(operators.pop().symbol, left, right))


class UnaryOperatorValue(_as.UnaryOperatorValue):  # type: ignore[misc]
    """``!x`` / ``not x`` with Velocity truth (only null and false are false)."""

    UNARY_OP = re.compile(r"\s*(!|not\b)\s*", re.DOTALL)

    def calculate(self, namespace: Any, loader: Any) -> object:
        return not values.truthy(self.value.calculate(namespace, loader))
