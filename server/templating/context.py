"""Builds the rendering context of an eSputnik message from an event's params.

``data`` is the event's params as an object; when the Email block names a JSON
param, that param's value becomes ``data`` instead, a string holding JSON (as v1
events send it) being parsed first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from server.codec.depth import BODY_TOO_DEEP, document_too_deep
from server.errors import WrongFormat
from server.templating.values import freeze


def build_context(
    *,
    params: Iterable[tuple[str, object]] | Mapping[str, object],
    json_param: str | None = None,
) -> dict[str, object]:
    """The ``{"data": ...}`` context for ``params``; WrongFormat when JSON does not parse."""
    pairs = params.items() if isinstance(params, Mapping) else params
    data: dict[str, object] = {}
    for name, value in pairs:
        # A param sent without a value (the ingest layer marks it with a sentinel
        # object) is null to the template, like a JSON null.
        data[name] = value if _is_json(value) else None
    if json_param is None:
        return {"data": freeze(data)}
    if json_param not in data:
        raise WrongFormat(f"the event has no param {json_param!r} to use as JSON data")
    value = data[json_param]
    if isinstance(value, str):
        value = parse_json(value)
    return {"data": freeze(value)}


def _is_json(value: object) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, list, tuple, Mapping))


def parse_json(text: str) -> object:
    """Strict JSON (no NaN/Infinity) nested at most ``MAX_BODY_DEPTH`` levels, as every
    document a caller sends (``server.codec.depth``); anything else is WrongFormat."""
    try:
        doc: object = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise WrongFormat(BODY_TOO_DEEP) from None
    except ValueError as error:
        raise WrongFormat(str(error)) from None
    too_deep = document_too_deep(doc, name="data", source=text)
    if too_deep is not None:
        raise WrongFormat(str(too_deep))
    return doc


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")
