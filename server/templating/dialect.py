"""Installs the dialect nodes into the private airspeed copy and parses templates.

After ``install`` every class name airspeed's parser looks up resolves to our
subclass, so ``parse`` yields a tree whose rendering follows Velocity 1.7 and the
sandbox rules. See ``nodes`` and ``directives`` for the behaviour of each node.
"""

from __future__ import annotations

from typing import Any

from server.templating import directives, nodes
from server.templating._airspeed import engine as _as
from server.templating.methods import InvocationError

_NODES: tuple[type, ...] = (
    nodes.Text,
    nodes.NameOrCall,
    nodes.SubExpression,
    nodes.FormalReference,
    nodes.StringLiteral,
    nodes.InterpolatedStringLiteral,
    nodes.BooleanLiteral,
    nodes.NullLiteral,
    nodes.AlternateValue,
    nodes.Range,
    nodes.BinaryOperator,
    nodes.Expression,
    nodes.UnaryOperatorValue,
    directives.Comment,
    directives.ElseBlock,
    directives.ElseifBlock,
    directives.IfDirective,
    directives.SetDirective,
    directives.ForeachDirective,
    directives.StopDirective,
    directives.MacroDefinition,
    directives.MacroCall,
    directives.EvaluateDirective,
    directives.IncludeDirective,
    directives.ParseDirective,
    directives.FallthroughHashText,
    directives.Block,
    directives.TemplateBody,
)


def _install() -> None:
    for node in _NODES:
        setattr(_as, node.__name__, node)
    # airspeed's hook for extra directives; tried before macro calls and stray '#'.
    _as.UserDefinedDirective.DIRECTIVES = [directives.BreakDirective, nodes.EscapedReference]


_install()

TemplateSyntaxError: type[Exception] = _as.TemplateSyntaxError
TemplateExecutionError: type[Exception] = _as.TemplateExecutionError


def parse(text: str) -> Any:
    """The parse tree of ``text``; raises airspeed's TemplateSyntaxError or our TemplateError."""
    return _as.TemplateBody("<template>", text, 0)


class NullLoader:
    """No template can be loaded: the sandbox has no file system."""

    def load_text(self, name: str) -> str:
        raise InvocationError(f"cannot load {name!r}: no file access in templates")

    def load_template(self, name: str) -> Any:
        return self.load_text(name)
