"""Shared gateway plumbing: auth pass-through, body reading, and the HTTP boundary of the
error tree (``error_response``: a failed gRPC call or a domain error to its HTTP answer)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import orjson
from google.protobuf import struct_pb2
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive

from server.api.credentials import checked_credential
from server.api.status import ErrorReport
from server.codec.jsondoc import load_document
from server.codec.values import py_to_value
from server.errors import (
    EventflowError,
    InvalidArgument,
    TooLarge,
    Unauthenticated,
    UnsupportedMediaType,
    Violation,
)


@dataclass(frozen=True, slots=True)
class HttpRule:
    """How one ErrorInfo reason is answered over HTTP: status, extra body keys, headers."""

    status: int
    extras: Callable[[Mapping[str, str]], dict[str, Any]] | None = None
    headers: Callable[[Mapping[str, str]], dict[str, str]] | None = None
    violations: bool = True  # whether the body carries a "violations" list
    status_for: Callable[[Mapping[str, str]], int] | None = None  # overrides ``status``


def _saved_template(meta: Mapping[str, str]) -> dict[str, Any]:
    return {"field": meta.get("field"), "line": int(meta.get("line", 0)),
            "column": int(meta.get("column", 0))}


def _template_failure(meta: Mapping[str, str]) -> dict[str, Any]:
    # The preview's own answer (no violations): positions are null when unknown.
    return {"line": int(meta.get("line", 0)) or None, "column": int(meta.get("column", 0)) or None,
            "kind": meta.get("kind", "render")}


def _retry_after(meta: Mapping[str, str]) -> dict[str, str]:
    return {"Retry-After": meta.get("retry_after", "1")}


def _www_authenticate(meta: Mapping[str, str]) -> dict[str, str]:
    return {"WWW-Authenticate": 'Basic realm="eventflow"'}


def _too_large_status(meta: Mapping[str, str]) -> int:
    return 431 if meta.get("part") == "headers" else 413


_BAD_REQUEST = HttpRule(400)
_UNAUTHENTICATED = HttpRule(401, headers=_www_authenticate)
_CONFLICT = HttpRule(409)
# The one HTTP mapping, by the ErrorInfo reasons of ``server.api.status.GRPC_MAP``.
HTTP_MAP: dict[str, HttpRule] = {
    "INVALID_ARGUMENT": _BAD_REQUEST,
    "INVALID_OCCURRED": _BAD_REQUEST,
    "SEGMENTATION_DISABLED": _BAD_REQUEST,
    "UNSUPPORTED_MEDIA_TYPE": HttpRule(415),
    "TEMPLATE_SYNTAX": HttpRule(422, extras=_saved_template),
    "TEMPLATE_ERROR": HttpRule(422, extras=_template_failure, violations=False),
    "UNAUTHENTICATED": _UNAUTHENTICATED,
    "PERMISSION_DENIED": HttpRule(403),
    "NOT_FOUND": HttpRule(404),
    "METHOD_NOT_ALLOWED": HttpRule(405),
    "CONFLICT": _CONFLICT,
    "TOO_LARGE": HttpRule(413, status_for=_too_large_status),
    "RATE_LIMITED": HttpRule(429, headers=_retry_after),
    "UNAVAILABLE": HttpRule(503),
}
# Statuses without an eventflow reason: failures of gRPC itself (server down, deadline,
# a message or metadata over gRPC's size limits: RESOURCE_EXHAUSTED, answered as the
# over-size it is). None of them gets a retry hint: the cause is unknown.
_BARE_CODES: dict[grpc.StatusCode, HttpRule] = {
    grpc.StatusCode.INVALID_ARGUMENT: _BAD_REQUEST,
    grpc.StatusCode.UNAUTHENTICATED: _UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED: HttpRule(403),
    grpc.StatusCode.NOT_FOUND: HttpRule(404),
    grpc.StatusCode.FAILED_PRECONDITION: _CONFLICT,
    grpc.StatusCode.ALREADY_EXISTS: _CONFLICT,
    grpc.StatusCode.RESOURCE_EXHAUSTED: HttpRule(413),
    grpc.StatusCode.UNAVAILABLE: HttpRule(503),
    grpc.StatusCode.DEADLINE_EXCEEDED: HttpRule(504),
    grpc.StatusCode.UNIMPLEMENTED: HttpRule(501),
}


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, headers=headers,
                    media_type="application/json")


def error_response(error: EventflowError | grpc.aio.AioRpcError | ErrorReport) -> Response:
    """The one HTTP answer to a failure: a domain error the gateway raised itself, a failed
    gRPC call, or a report read from a reply; ``{"error", ...extras, "violations"}``."""
    if isinstance(error, EventflowError):
        report = ErrorReport.of(error)
    elif isinstance(error, grpc.aio.AioRpcError):
        report = ErrorReport.from_rpc(error)
    else:
        report = error
    rule = HTTP_MAP.get(report.reason) or _BARE_CODES.get(report.code)
    message = report.message
    if rule is None:
        rule = HttpRule(502)
        message = f"the eventflow server failed ({report.code.name}): {message}"
    body: dict[str, Any] = {"error": message}
    if rule.extras is not None:
        body.update(rule.extras(report.metadata))
    if rule.violations:
        body["violations"] = [{"field": v.field, "message": v.message} for v in report.violations]
    headers = rule.headers(report.metadata) if rule.headers is not None else None
    status = rule.status_for(report.metadata) if rule.status_for is not None else rule.status
    return json_response(body, status, headers)


def credentials(authorization: str | None, api_key: str | None) -> tuple[tuple[str, str], ...]:
    """The gRPC metadata passing the caller's credentials to the server; it decides."""
    if authorization:
        return (("authorization", checked_credential("Authorization", authorization)),)
    if api_key:
        return (("x-api-key", checked_credential("x-api-key", api_key)),)
    raise Unauthenticated("authentication required: use HTTP Basic auth with any user name "
                          "and the API key as password")


def auth_metadata(request: Request) -> tuple[tuple[str, str], ...]:
    """Pass the caller's credentials to the gRPC server; it decides."""
    headers = request.headers
    return credentials(headers.get("authorization"), headers.get("x-api-key"))


INT32_MAX, INT64_MAX = 2**31 - 1, 2**63 - 1


def _digits(raw: str) -> bool:
    # str.isdigit also accepts "²" and other digits int() refuses, or reads unexpectedly.
    return raw.isascii() and raw.isdigit()


def path_id(request: Request, name: str) -> int:
    """The id in path parameter ``name``: a positive whole number that fits int64."""
    raw = request.path_params[name]
    value = int(raw) if _digits(raw) else 0
    if value == 0:
        raise InvalidArgument.from_violations([Violation("id", f"{raw!r} is not a positive number")])
    if value > INT64_MAX:
        raise InvalidArgument.from_violations([Violation("id", id_too_large(raw))])
    return value


def id_too_large(raw: str) -> str:
    """The message for a path id of ASCII digits past int64 (no id can be that large)."""
    return f"{raw!r} is past the largest id, {INT64_MAX}"


def query_number(request: Request, *names: str, most: int = INT64_MAX, default: int = 0) -> int:
    """The first of query parameters ``names`` that is set, as a whole number (``default``
    when none is), cut to ``most`` (an int32 field passes ``most=INT32_MAX``): a count or
    id over it finds nothing more than ``most`` does."""
    name = next((n for n in names if request.query_params.get(n)), None)
    if name is None:
        return default
    raw = request.query_params[name]
    if not _digits(raw):
        raise InvalidArgument.from_violations([Violation(name, "must be a number")])
    return min(int(raw), most)


def json_object(doc: Any, name: str = "body") -> dict[str, Any]:
    """``doc`` when it is a JSON object; else 400 naming ``name``."""
    if not isinstance(doc, dict):
        raise InvalidArgument.from_violations([Violation(name, "must be a JSON object")])
    return doc


def json_struct(doc: Any, name: str = "body") -> struct_pb2.Struct:
    """A JSON object as the ``Struct`` a request carries; else 400 naming ``name``."""
    # The C codec where built: a few hundred ns per value instead of microseconds.
    struct: struct_pb2.Struct = py_to_value(json_object(doc, name)).struct_value
    return struct


def _limit_text(limit: int, setting: str | None) -> str:
    return f"{limit} bytes" + (f" ({setting})" if setting else "")


def check_json_headers(content_type: str | None, content_length: str | None, limit: int,
                       setting: str | None = None) -> None:
    """Refuse a body that is not JSON (or JSON declared in a charset other than UTF-8,
    which is all it is read as), or declared longer than ``limit`` (``setting`` names
    what sets the limit, for the message)."""
    ctype, *params = (content_type or "").split(";")
    ctype = ctype.strip().lower()
    if ctype != "application/json" and not ctype.endswith("+json"):
        raise UnsupportedMediaType("the body must be JSON: send Content-Type: "
                                   f"application/json (got {ctype or 'none'})")
    for param in params:
        name, _, value = param.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(f"the body must be UTF-8 JSON (got charset={charset}); "
                                       "send it as UTF-8, with charset=utf-8 or no charset")
    if content_length and _digits(content_length) and int(content_length) > limit:
        raise TooLarge(f"the body is {content_length} bytes; the limit is "
                       f"{_limit_text(limit, setting)}")


def over_limit(limit: int, setting: str | None = None) -> TooLarge:
    """The error for a body that grew past ``limit`` bytes while being read."""
    return TooLarge(f"the body is over the limit of {_limit_text(limit, setting)}")


def parse_json(raw: bytes, *, events: bool = False) -> Any:
    """The body as JSON; 400 for bad JSON, text that is not UTF-8 or nesting past
    ``MAX_BODY_DEPTH`` (``codec.jsondoc``, the server's reader of JSON text too; with
    ``events`` the event codec checks the nesting instead)."""
    return load_document(raw, name="body", events=events)


async def read_body(receive: Receive, *, content_type: str | None, content_length: str | None,
                    limit: int, setting: str | None = None) -> bytes:
    """A JSON request's body from its ASGI messages, refusing wrong content types and
    bodies over ``limit`` (set by ``setting``, when one does); ``ClientDisconnect`` when
    the client goes away first. A refused body is drained by ``gateway.unread``."""
    check_json_headers(content_type, content_length, limit, setting)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise over_limit(limit, setting)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def read_json(request: Request, *, limit: int, setting: str | None = None,
                    events: bool = False) -> Any:
    """The request body as JSON, refusing wrong content types, oversize bodies, bad JSON."""
    headers = request.headers
    return parse_json(await read_body(request.receive, content_type=headers.get("content-type"),
                                      content_length=headers.get("content-length"), limit=limit,
                                      setting=setting), events=events)


Endpoint = Callable[[Request], Awaitable[Response]]


def endpoint(fn: Endpoint) -> Endpoint:
    """Answer the domain errors and failed gRPC calls of a handler through ``error_response``."""

    async def wrapped(request: Request) -> Response:
        try:
            return await fn(request)
        except (EventflowError, grpc.aio.AioRpcError) as exc:
            return error_response(exc)

    wrapped.__name__ = fn.__name__
    return wrapped
