"""The gRPC boundary of the error tree: one interceptor for every eventflow service
authenticates the caller and maps domain errors (``server.errors``) to gRPC status with
``google.rpc`` details; ``ErrorReport`` is that mapping, and reads it back on the client.
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from server.accounts import KeyResolver
from server.errors import (
    Conflict,
    ContactValidationError,
    EventflowError,
    InvalidArgument,
    MethodNotAllowed,
    NotFound,
    OccurredError,
    PermissionDenied,
    RateLimited,
    ReadOnlyError,
    RenderLimitExceeded,
    TemplateError,
    TemplateSyntaxInvalid,
    TooLarge,
    Unauthenticated,
    Unavailable,
    UnsupportedMediaType,
    Violation,
    WrongFormat,
)

log = logging.getLogger(__name__)
current_account: contextvars.ContextVar[int] = contextvars.ContextVar("current_account")
ERROR_DOMAIN = "eventflow"
_DETAILS_KEY = "grpc-status-details-bin"

Code = grpc.StatusCode
# The one gRPC mapping: each class of the error tree, its status code and ErrorInfo reason.
# Reasons are the contract the gateway (and any client) reads; a code alone is ambiguous
# (RESOURCE_EXHAUSTED is both "too large" and "too fast").
GRPC_MAP: dict[type[EventflowError], tuple[grpc.StatusCode, str]] = {
    InvalidArgument: (Code.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
    ContactValidationError: (Code.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
    OccurredError: (Code.INVALID_ARGUMENT, "INVALID_OCCURRED"),
    UnsupportedMediaType: (Code.INVALID_ARGUMENT, "UNSUPPORTED_MEDIA_TYPE"),
    TemplateSyntaxInvalid: (Code.INVALID_ARGUMENT, "TEMPLATE_SYNTAX"),
    TemplateError: (Code.INVALID_ARGUMENT, "TEMPLATE_ERROR"),
    WrongFormat: (Code.INVALID_ARGUMENT, "TEMPLATE_ERROR"),
    ReadOnlyError: (Code.INVALID_ARGUMENT, "TEMPLATE_ERROR"),
    RenderLimitExceeded: (Code.INVALID_ARGUMENT, "TEMPLATE_ERROR"),
    Unauthenticated: (Code.UNAUTHENTICATED, "UNAUTHENTICATED"),
    PermissionDenied: (Code.PERMISSION_DENIED, "PERMISSION_DENIED"),
    NotFound: (Code.NOT_FOUND, "NOT_FOUND"),
    MethodNotAllowed: (Code.UNIMPLEMENTED, "METHOD_NOT_ALLOWED"),
    Conflict: (Code.FAILED_PRECONDITION, "CONFLICT"),
    TooLarge: (Code.RESOURCE_EXHAUSTED, "TOO_LARGE"),
    RateLimited: (Code.RESOURCE_EXHAUSTED, "RATE_LIMITED"),
    Unavailable: (Code.UNAVAILABLE, "UNAVAILABLE"),
}


@dataclass(frozen=True, slots=True)
class ErrorReport:
    """What a caller learns of a failed call, on either side of the wire.

    ``reason`` and ``metadata`` are the ErrorInfo's; ``reason`` is ``""`` for a status
    that carries none (a failure of gRPC itself, or of a server that is not eventflow).
    """

    code: grpc.StatusCode
    reason: str
    message: str
    violations: tuple[Violation, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, exc: EventflowError) -> ErrorReport:
        """The report of a domain error, through ``GRPC_MAP`` (nearest mapped class)."""
        code, reason = next(GRPC_MAP[c] for c in type(exc).__mro__ if c in GRPC_MAP)
        violations = tuple(exc.violations) if isinstance(exc, InvalidArgument) else ()
        return cls(code, reason, exc.message, violations, exc.details)

    @classmethod
    def from_rpc(cls, exc: grpc.aio.AioRpcError) -> ErrorReport:
        """The report a client reads back from a failed call's status and details."""
        reason, metadata, violations = "", {}, []
        for key, value in exc.trailing_metadata() or ():
            if key != _DETAILS_KEY:
                continue
            for detail in status_pb2.Status.FromString(value).details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad = error_details_pb2.BadRequest()
                    detail.Unpack(bad)
                    violations += [Violation(v.field, v.description) for v in bad.field_violations]
                elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    reason, metadata = info.reason, dict(info.metadata)
        return cls(exc.code(), reason, exc.details() or exc.code().name, tuple(violations),
                   metadata)

    def to_status(self) -> grpc.Status:
        """The status a server answers: code, message, ErrorInfo and, with violations,
        ``google.rpc.BadRequest``."""
        info = any_pb2.Any()
        info.Pack(error_details_pb2.ErrorInfo(reason=self.reason, domain=ERROR_DOMAIN,
                                              metadata=self.metadata))
        details = [info]
        if self.violations:
            bad = any_pb2.Any()
            bad.Pack(error_details_pb2.BadRequest(field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.message)
                for v in self.violations]))
            details.append(bad)
        status: grpc.Status = rpc_status.to_status(status_pb2.Status(
            code=self.code.value[0], message=self.message, details=details))
        return status


def to_status(exc: EventflowError) -> grpc.Status:
    """The gRPC status a server answers for ``exc``."""
    return ErrorReport.of(exc).to_status()


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
