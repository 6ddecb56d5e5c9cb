"""The one reader of JSON documents callers send: HTTP bodies (the gateway) and JSON text
carried in gRPC fields (workflow definitions, simulations). Both refuse the same things,
as ``InvalidArgument`` naming the document: text that is not JSON or not UTF-8, and
nesting past ``depth.MAX_BODY_DEPTH`` (naming the path of the first value past it),
checked once here, so nothing after it (protobuf Structs, orjson's encoder, the
definition checks) meets a document deeper than it can take.
"""

from __future__ import annotations

from typing import Any

import orjson

from server.codec.depth import BODY_TOO_DEEP, document_too_deep
from server.errors import InvalidArgument, Violation

__all__ = ["load_document"]


def load_document(raw: bytes | str, *, name: str = "body", events: bool = False) -> Any:
    """``raw`` parsed; InvalidArgument naming ``name`` (or the too-deep path in it).

    ``events``: the document is an event body (or a list of them), whose depth the event
    codec checks as it decodes (``jsonbody``: param values against ``MAX_DEPTH``, naming
    ``params[i].value`` however deep); nothing else in it is walked or encoded, so the
    body rule is left to that one check.
    """
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):  # orjson's own, past 1024 levels
            raise InvalidArgument.from_violations([Violation(name, BODY_TOO_DEEP)]) from None
        raise InvalidArgument(
            f"the {name} is not valid JSON: {exc}",
            [Violation(name, "is not valid JSON (check quotes, commas and that the text "
                       "is UTF-8)")]) from None
    too_deep = None if events else document_too_deep(doc, name=name, source=raw)
    if too_deep is not None:
        raise InvalidArgument.from_violations([too_deep])
    return doc
