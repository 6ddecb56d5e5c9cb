"""Shared gateway plumbing: auth pass-through, body reading, gRPC-to-HTTP error mapping."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import orjson
from google.rpc import code_pb2, error_details_pb2, status_pb2
from starlette.requests import Request
from starlette.responses import Response

from server.errors import InvalidArgument, Violation

_HTTP_FOR_CODE = {
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.UNAUTHENTICATED: 401,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.NOT_FOUND: 404,
    code_pb2.FAILED_PRECONDITION: 409,
    code_pb2.ALREADY_EXISTS: 409,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    code_pb2.UNAVAILABLE: 503,
    code_pb2.DEADLINE_EXCEEDED: 504,
    code_pb2.UNIMPLEMENTED: 501,
}


class HttpError(Exception):
    def __init__(self, status: int, error: str, violations: list[Violation] | None = None,
                 headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None
                 ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.violations = violations or []
        self.headers = headers or {}
        self.extra = extra or {}


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, headers=headers,
                    media_type="application/json")


def error_response(exc: HttpError) -> Response:
    body: dict[str, Any] = {"error": exc.error, **exc.extra}
    body["violations"] = [{"field": v.field, "message": v.message} for v in exc.violations]
    return json_response(body, exc.status, exc.headers)


def credentials(authorization: str | None, api_key: str | None) -> tuple[tuple[str, str], ...]:
    """The gRPC metadata passing the caller's credentials to the server; it decides."""
    if authorization:
        return (("authorization", authorization),)
    if api_key:
        return (("x-api-key", api_key),)
    raise HttpError(401, "authentication required: use HTTP Basic auth with any user name "
                    "and the API key as password", headers={"WWW-Authenticate": 'Basic realm="eventflow"'})


def auth_metadata(request: Request) -> tuple[tuple[str, str], ...]:
    """Pass the caller's credentials to the gRPC server; it decides."""
    headers = request.headers
    return credentials(headers.get("authorization"), headers.get("x-api-key"))


def check_json_headers(content_type: str | None, content_length: str | None, limit: int) -> None:
    """Refuse a body that is not JSON, or declared longer than ``limit``."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype != "application/json" and not ctype.endswith("+json"):
        raise HttpError(415, f"the body must be JSON: send Content-Type: application/json "
                        f"(got {ctype or 'none'})")
    if content_length and content_length.isdigit() and int(content_length) > limit:
        raise HttpError(413, f"the body is {content_length} bytes; the limit is {limit} "
                        "(EVENTFLOW_MAX_EVENT_BYTES)")


def over_limit(limit: int) -> HttpError:
    """The answer to a body that grew past ``limit`` bytes while being read."""
    return HttpError(413, f"the body is over the limit of {limit} bytes "
                     "(EVENTFLOW_MAX_EVENT_BYTES)")


def parse_json(raw: bytes) -> Any:
    """The body as JSON; 400 for bad JSON or text that is not UTF-8."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise HttpError(400, f"the body is not valid JSON: {exc}",
                        [Violation("body", "is not valid JSON (check quotes, commas and "
                                   "that the text is UTF-8)")]) from None


async def read_json(request: Request, *, limit: int) -> Any:
    """The request body as JSON, refusing wrong content types, oversize bodies, bad JSON."""
    headers = request.headers
    check_json_headers(headers.get("content-type"), headers.get("content-length"), limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise over_limit(limit)
        chunks.append(chunk)
    return parse_json(b"".join(chunks))


def from_grpc(exc: grpc.aio.AioRpcError) -> HttpError:
    code = exc.code().value[0]
    message = exc.details() or exc.code().name
    violations: list[Violation] = []
    reason = ""
    info_meta: dict[str, str] = {}
    for key, value in exc.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad = error_details_pb2.BadRequest()
                    detail.Unpack(bad)
                    violations += [Violation(v.field, v.description) for v in bad.field_violations]
                elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    reason = info.reason
                    info_meta = dict(info.metadata)
    status_code = _HTTP_FOR_CODE.get(code, 502)
    headers: dict[str, str] = {}
    extra: dict[str, Any] = {}
    if reason == "TOO_LARGE":
        status_code = 413
    elif reason == "TEMPLATE_SYNTAX":
        # A template that does not compile: 422 with where, like the preview's answer.
        status_code = 422
        extra = {"field": info_meta.get("field"), "line": int(info_meta.get("line", 0)),
                 "column": int(info_meta.get("column", 0))}
    elif code == code_pb2.RESOURCE_EXHAUSTED:
        headers["Retry-After"] = "1"
    elif code == code_pb2.UNAUTHENTICATED:
        headers["WWW-Authenticate"] = 'Basic realm="eventflow"'
    elif status_code == 502:
        message = f"the eventflow server failed ({exc.code().name}): {message}"
    return HttpError(status_code, message, violations, headers, extra)


Endpoint = Callable[[Request], Awaitable[Response]]


def http_error(exc: Exception) -> HttpError | None:
    """The JSON answer to an exception of a handler, None for an unexpected one."""
    if isinstance(exc, HttpError):
        return exc
    if isinstance(exc, InvalidArgument):
        return HttpError(400, exc.message, exc.violations)
    if isinstance(exc, grpc.aio.AioRpcError):
        return from_grpc(exc)
    return None


def endpoint(fn: Endpoint) -> Endpoint:
    """Turn HttpError, domain validation and gRPC errors into JSON answers."""

    async def wrapped(request: Request) -> Response:
        try:
            return await fn(request)
        except (HttpError, InvalidArgument, grpc.aio.AioRpcError) as exc:
            error = http_error(exc)
            assert error is not None
            return error_response(error)

    wrapped.__name__ = fn.__name__
    return wrapped
