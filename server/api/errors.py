"""One interceptor for every eventflow service: authenticates the caller and maps domain
errors to gRPC status with ``google.rpc`` details (BadRequest field violations, ErrorInfo).
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from server.accounts import KeyResolver
from server.errors import (
    Conflict,
    EventflowError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RateLimited,
    TooLarge,
    Unauthenticated,
    Unavailable,
    Violation,
)

log = logging.getLogger(__name__)
current_account: contextvars.ContextVar[int] = contextvars.ContextVar("current_account")
ERROR_DOMAIN = "eventflow"

_CODES: list[tuple[type[EventflowError], int, str]] = [
    (InvalidArgument, code_pb2.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
    (Unauthenticated, code_pb2.UNAUTHENTICATED, "UNAUTHENTICATED"),
    (PermissionDenied, code_pb2.PERMISSION_DENIED, "PERMISSION_DENIED"),
    (NotFound, code_pb2.NOT_FOUND, "NOT_FOUND"),
    (TooLarge, code_pb2.RESOURCE_EXHAUSTED, "TOO_LARGE"),
    (RateLimited, code_pb2.RESOURCE_EXHAUSTED, "RATE_LIMITED"),
    (Conflict, code_pb2.FAILED_PRECONDITION, "CONFLICT"),
    (Unavailable, code_pb2.UNAVAILABLE, "UNAVAILABLE"),
]


def to_status(exc: EventflowError) -> grpc.Status:
    code, reason = code_pb2.INTERNAL, "INTERNAL"
    for cls, c, r in _CODES:
        if isinstance(exc, cls):
            code, reason = c, r
            break
    details = []
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=exc.reason or reason, domain=ERROR_DOMAIN,
                                          metadata=exc.details))
    details.append(info)
    if isinstance(exc, InvalidArgument) and exc.violations:
        bad = error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.message)
            for v in exc.violations])
        packed = any_pb2.Any()
        packed.Pack(bad)
        details.append(packed)
    status: grpc.Status = rpc_status.to_status(
        status_pb2.Status(code=code, message=exc.message, details=details))
    return status


def api_key_from_metadata(metadata: Any) -> str:
    """``authorization: Basic base64(any:KEY)`` (eSputnik style), ``Bearer KEY`` or ``x-api-key``."""
    for key, value in metadata or ():
        if key == "x-api-key":
            return str(value).strip()
        if key == "authorization":
            scheme, _, rest = str(value).partition(" ")
            if scheme.lower() == "basic":
                try:
                    decoded = base64.b64decode(rest.strip(), validate=True).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError):
                    raise Unauthenticated("the Basic authorization header is not valid base64 "
                                          "of user:apikey") from None
                return decoded.partition(":")[2]
            if scheme.lower() == "bearer":
                return rest.strip()
    return ""


Handler = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


class Undecodable:
    """Stands in for a request protobuf could not decode (e.g. nested over 100 levels)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def error(self) -> InvalidArgument:
        return InvalidArgument.from_violations([Violation(
            "request", f"could not be decoded ({self.reason}); values may nest at most "
            "24 levels")])


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """A deserializer that turns decode failures into INVALID_ARGUMENT instead of UNKNOWN."""
    if deserializer is None:
        return None

    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError as exc:
            return Undecodable(str(exc).rsplit(":", 1)[-1].strip() or "malformed message")

    return decode


class AuthErrorInterceptor(grpc.aio.ServerInterceptor):
    """Wraps the methods of ``/eventflow.`` services; health and reflection stay open."""

    def __init__(self, resolver: KeyResolver) -> None:
        self._resolver = resolver

    async def _authenticate(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        key = api_key_from_metadata(context.invocation_metadata())
        current_account.set(await self._resolver.account_for(key))

    async def _abort(self, context: grpc.aio.ServicerContext[Any, Any], exc: BaseException) -> None:
        if isinstance(exc, EventflowError):
            await context.abort_with_status(to_status(exc))
        log.exception("unexpected error in %s", type(exc).__name__, exc_info=exc)
        await context.abort(grpc.StatusCode.INTERNAL,
                            "internal error; the server log has the details")

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None or not details.method.startswith("/eventflow."):
            return handler
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary),
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer)
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._wrap_stream(handler.stream_stream),
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer)
        return handler

    def _wrap_unary(self, inner: Handler) -> Handler:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                await self._authenticate(context)
                if isinstance(request, Undecodable):
                    raise request.error()
                return await inner(request, context)
            except Exception as exc:
                if isinstance(exc, grpc.aio.AbortError):
                    raise
                await self._abort(context, exc)
        return wrapped

    def _wrap_stream(self, inner: Callable[..., AsyncIterator[Any]]) -> Callable[..., Any]:
        async def wrapped(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            async def checked() -> AsyncIterator[Any]:
                async for request in requests:
                    if isinstance(request, Undecodable):
                        raise request.error()
                    yield request

            try:
                await self._authenticate(context)
                async for item in inner(checked(), context):
                    yield item
            except Exception as exc:
                if isinstance(exc, grpc.aio.AbortError):
                    raise
                await self._abort(context, exc)
        return wrapped
