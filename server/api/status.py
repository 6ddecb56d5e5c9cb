"""The gRPC form of the error tree (``server.errors``), both ways: ``GRPC_MAP`` gives each
class its status code and ``google.rpc.ErrorInfo`` reason; ``ErrorReport`` turns an error
into a status (the interceptor answers it) and reads one back (the gateway, any client).

Kept free of server-side imports: the gateway loads it on start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

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
    SegmentationDisabled,
    TemplateError,
    TemplateSyntaxInvalid,
    TooLarge,
    Unauthenticated,
    Unavailable,
    UnsupportedMediaType,
    Violation,
    WrongFormat,
)

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
    SegmentationDisabled: (Code.INVALID_ARGUMENT, "SEGMENTATION_DISABLED"),
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
