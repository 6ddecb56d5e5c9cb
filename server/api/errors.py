"""One interceptor for every eventflow service: authenticates the caller and answers
domain errors (``server.errors``) with their gRPC status, as ``server.api.status`` maps
them (code, ErrorInfo, BadRequest field violations); anything else is INTERNAL.
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from server.accounts import KeyResolver
from server.api.credentials import checked_credential
from server.api.status import ErrorReport
from server.db.errors import describe, outage, unavailable
from server.errors import (
    EventflowError,
    InvalidArgument,
    PermissionDenied,
    TooLarge,
    Unauthenticated,
    Violation,
)

log = logging.getLogger(__name__)
current_account: contextvars.ContextVar[int] = contextvars.ContextVar("current_account")


def api_key_from_metadata(metadata: Any) -> str:
    """``authorization: Basic base64(any:KEY)`` (eSputnik style), ``Bearer KEY`` or ``x-api-key``."""
    for key, value in metadata or ():
        if key == "x-api-key":
            return checked_credential(key, str(value)).strip()
        if key == "authorization":
            scheme, _, rest = checked_credential(key, str(value)).partition(" ")
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


class Unread:
    """Stands in for a request that was not made into a message; ``error`` is its answer
    (``field``: where it was, ``requests[i]`` in a stream)."""

    def error(self, field: str = "request") -> EventflowError:
        raise NotImplementedError


class Undecodable(Unread):
    """A request protobuf could not decode (e.g. nested over 100 levels)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def error(self, field: str = "request") -> InvalidArgument:
        return InvalidArgument.from_violations([Violation(
            field, f"could not be decoded ({self.reason}); values may nest at most "
            "24 levels")])


class Refused(Unread):
    """A request refused on its length or count before it was parsed
    (``codec.received.bounded``)."""

    def __init__(self, refusal: EventflowError) -> None:
        self.refusal = refusal

    def error(self, field: str = "request") -> EventflowError:
        if field == "request" or not isinstance(self.refusal, TooLarge):
            return self.refusal
        return TooLarge(f"{field}: {self.refusal.message}")


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """A deserializer that turns decode failures into INVALID_ARGUMENT, and a refusal
    before parsing (too large, too many) into its own status, instead of UNKNOWN."""
    if deserializer is None:
        return None

    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError as exc:
            return Undecodable(str(exc).rsplit(":", 1)[-1].strip() or "malformed message")
        except EventflowError as exc:
            return Refused(exc)

    return decode


ADMIN_PREFIX = "/eventflow.v1.AdminService/"


class AuthErrorInterceptor(grpc.aio.ServerInterceptor):
    """Wraps the methods of ``/eventflow.`` services; health and reflection stay open.
    AdminService takes the admin key (``admin_key``; None turns the service off), every
    other service an account's key."""

    def __init__(self, resolver: KeyResolver, *, admin_key: str | None = None) -> None:
        self._resolver = resolver
        self._admin_key = admin_key

    async def _authenticate(self, context: grpc.aio.ServicerContext[Any, Any],
                            method: str) -> None:
        key = api_key_from_metadata(context.invocation_metadata())
        if method.startswith(ADMIN_PREFIX):
            self._check_admin(key)
            return
        current_account.set(await self._resolver.account_for(key))

    def _check_admin(self, key: str) -> None:
        if self._admin_key is None:
            raise PermissionDenied("the admin service is off: set EVENTFLOW_ADMIN_KEY on "
                                   "the server to use it")
        if not hmac.compare_digest(key.encode(), self._admin_key.encode()):
            log.warning("admin call refused: wrong or missing admin key")
            raise Unauthenticated("this call needs the admin key (EVENTFLOW_ADMIN_KEY)")

    async def _abort(self, context: grpc.aio.ServicerContext[Any, Any], exc: BaseException) -> None:
        if not isinstance(exc, EventflowError) and outage(exc):
            # The database locked, down or gone: the caller's retry, not our bug.
            log.warning("database unavailable: %s", describe(exc))
            exc = unavailable(exc)
        if isinstance(exc, EventflowError):
            await context.abort_with_status(ErrorReport.of(exc).to_status())
        log.exception("unexpected error in %s", type(exc).__name__, exc_info=exc)
        await context.abort(grpc.StatusCode.INTERNAL,
                            "internal error; the server log has the details")

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None or not details.method.startswith("/eventflow."):
            return handler
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, details.method),
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer)
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._wrap_stream(handler.stream_stream, details.method),
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer)
        return handler

    def _wrap_unary(self, inner: Handler, method: str) -> Handler:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                await self._authenticate(context, method)
                if isinstance(request, Unread):
                    raise request.error()
                return await inner(request, context)
            except Exception as exc:
                if isinstance(exc, grpc.aio.AbortError):
                    raise
                await self._abort(context, exc)
        return wrapped

    def _wrap_stream(self, inner: Callable[..., AsyncIterator[Any]], method: str
                     ) -> Callable[..., Any]:
        async def wrapped(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            async def checked() -> AsyncIterator[Any]:
                index = 0
                async for request in requests:
                    if isinstance(request, Unread):
                        # The messages before it were answered; none after it is read.
                        raise request.error(f"requests[{index}]")
                    index += 1
                    yield request

            try:
                await self._authenticate(context, method)
                async for item in inner(checked(), context):
                    yield item
            except Exception as exc:
                if isinstance(exc, grpc.aio.AbortError):
                    raise
                await self._abort(context, exc)
        return wrapped
