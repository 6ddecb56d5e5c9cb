"""Compiles templates (cached) and renders them inside the sandbox's budget.

This is the one boundary where airspeed's exceptions become ``TemplateError``s
with a line, a column and a short reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from server.errors import RenderLimitExceeded, TemplateError
from server.templating import dialect, limits
from server.templating.methods import InvocationError
from server.templating.nodes import position
from server.templating.scopes import BreakLoop, StopRender
from server.templating.values import freeze

_LOADER = dialect.NullLoader()
_SYNTAX_PREFIX = "line "


class CompiledTemplate:
    """A parsed template, renderable many times against different contexts."""

    __slots__ = ("_root", "text")

    def __init__(self, *, text: str, root: Any) -> None:
        self.text = text
        self._root = root

    def render(
        self,
        context: Mapping[str, object],
        *,
        max_output: int = limits.DEFAULT_MAX_OUTPUT,
        timeout: float = limits.DEFAULT_TIMEOUT,
    ) -> str:
        """Renders against ``context`` (frozen first, so templates cannot change it)."""
        namespace: dict[str, object] = {name: freeze(value) for name, value in context.items()}
        token = limits.start(max_output=max_output, timeout=timeout)
        try:
            stream = limits.BoundedStream()
            try:
                self._root.evaluate(stream, namespace, _LOADER)
            except (BreakLoop, StopRender):
                pass
            except dialect.TemplateExecutionError as error:
                cause = error.__cause__
                if isinstance(cause, MemoryError):
                    raise cause from None  # the process's limit: its owner decides
                raise _execution_error(error) from None
            except RecursionError:
                raise RenderLimitExceeded("template nests too deeply") from None
            return stream.getvalue()
        finally:
            limits.finish(token)


@lru_cache(maxsize=512)
def compile_template(text: str) -> CompiledTemplate:
    """Parses ``text`` once; later calls with the same text reuse the parse tree."""
    try:
        root = dialect.parse(text)
    except dialect.TemplateSyntaxError as error:
        raise _syntax_error(error) from None
    except RecursionError:
        raise TemplateError("template nests too deeply") from None
    return CompiledTemplate(text=text, root=root)


def render(
    text: str,
    context: Mapping[str, object],
    *,
    max_output: int = limits.DEFAULT_MAX_OUTPUT,
    timeout: float = limits.DEFAULT_TIMEOUT,
) -> str:
    """Compiles (or reuses) ``text`` and renders it against ``context``."""
    return compile_template(text).render(context, max_output=max_output, timeout=timeout)


def _syntax_error(error: Any) -> TemplateError:
    message = str(error)
    # airspeed says "line L, column C: expected X in Y, got: Z ..."; keep the reason part.
    reason = message.split(": ", 1)[1] if message.startswith(_SYNTAX_PREFIX) else message
    reason = reason.removesuffix(" ...")
    return TemplateError(f"syntax error, {reason}", line=error.line, column=error.column)


def _execution_error(error: Any) -> TemplateError:
    cause = error.__cause__
    line, column = position(error.element)
    snippet = error.element.my_text().split("\n", 1)[0][:60]
    if isinstance(cause, TemplateError):
        kind = type(cause)
        reason = cause.reason
    elif isinstance(cause, InvocationError):
        kind, reason = TemplateError, f"{snippet} failed: {cause}"
    else:
        kind, reason = TemplateError, f"{snippet} failed: {type(cause).__name__}: {cause}"
    return kind.at(reason, line=line, column=column)
