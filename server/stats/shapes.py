"""The structure of an event type's params as seen in stored bodies: every path with the JSON
types found there, how often it occurs and one example value."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

MAX_PATHS = 200
MAX_EXAMPLE = 80


@dataclass(slots=True)
class ParamShape:
    path: str
    types: list[str] = field(default_factory=list)
    seen: int = 0
    example: str = ""


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "list" if isinstance(value, list) else "object"


def _walk(path: str, value: Any, out: dict[str, set[str]], examples: dict[str, str]) -> None:
    out.setdefault(path, set()).add(json_type(value))
    if isinstance(value, dict):
        for name, inner in value.items():
            _walk(f"{path}.{name}", inner, out, examples)
    elif isinstance(value, list):
        for item in value:
            _walk(f"{path}[]", item, out, examples)
    elif path not in examples:
        text = orjson.dumps(value).decode()
        examples[path] = text if len(text) <= MAX_EXAMPLE else text[:MAX_EXAMPLE - 1] + "…"


def param_shapes(bodies: list[str]) -> list[ParamShape]:
    """Paths in first-seen order; ``seen`` counts the bodies a path occurs in."""
    shapes: dict[str, ParamShape] = {}
    examples: dict[str, str] = {}
    for body in bodies:
        try:
            params = orjson.loads(body).get("params") or []
        except (orjson.JSONDecodeError, AttributeError):
            continue
        found: dict[str, set[str]] = {}
        for param in params:
            if isinstance(param, dict) and isinstance(param.get("name"), str):
                _walk(param["name"], param.get("value"), found, examples)
        for path, types in found.items():
            if path not in shapes:
                if len(shapes) >= MAX_PATHS:
                    continue
                shapes[path] = ParamShape(path)
            shape = shapes[path]
            shape.seen += 1
            shape.types = sorted(set(shape.types) | types)
    for path, shape in shapes.items():
        shape.example = examples.get(path, "")
    return list(shapes.values())
