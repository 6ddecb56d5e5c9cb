"""The client's exceptions, translated from gRPC status at one boundary (``translate``)."""

from __future__ import annotations

from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2


class EventflowError(Exception):
    def __init__(self, message: str, *, code: str = "UNKNOWN",
                 violations: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.violations = violations or []


class InvalidArgumentError(EventflowError):
    pass


class AuthenticationError(EventflowError):
    pass


class NotFoundError(EventflowError):
    pass


class TooLargeError(EventflowError):
    pass


class RateLimitedError(EventflowError):
    pass


class UnavailableError(EventflowError):
    pass


_BY_CODE: dict[grpc.StatusCode, type[EventflowError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.UNAUTHENTICATED: AuthenticationError,
    grpc.StatusCode.PERMISSION_DENIED: AuthenticationError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: UnavailableError,
}


def translate(exc: grpc.RpcError) -> EventflowError:
    """Map a gRPC error (sync or aio) onto the client's exception tree."""
    code: grpc.StatusCode = exc.code()
    message: str = exc.details() or code.name
    violations: list[tuple[str, str]] = []
    reason = ""
    metadata: Any = exc.trailing_metadata() or ()
    for key, value in metadata:
        if key != "grpc-status-details-bin":
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations += [(v.field, v.description) for v in bad.field_violations]
            elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
    cls: type[EventflowError]
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        # Only the server's rate limit says RATE_LIMITED. gRPC's own refusal of a message
        # over the size limit has no reason at all ("Received message larger than max"):
        # too large, never a hint to retry.
        cls = RateLimitedError if reason == "RATE_LIMITED" else TooLargeError
    else:
        cls = _BY_CODE.get(code, EventflowError)
    return cls(message, code=code.name, violations=violations)
