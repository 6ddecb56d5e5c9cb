"""Message templates: eSputnik's Velocity dialect on airspeed, sandboxed.

Templates render the way Apache Velocity 1.7 renders them for what eSputnik
messages use (see docs/templates.md), against JSON-like data only, with bounded
output, time and nesting, and no access to Python objects or the file system.
"""

from server.errors import RenderLimitExceeded, TemplateError, WrongFormat
from server.templating.context import build_context
from server.templating.engine import CompiledTemplate, compile_template, render

__all__ = [
    "CompiledTemplate",
    "RenderLimitExceeded",
    "TemplateError",
    "WrongFormat",
    "build_context",
    "compile_template",
    "render",
]
