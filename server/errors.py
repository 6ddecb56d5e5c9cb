"""Domain errors of eventflow; they know nothing of gRPC or HTTP.

    EventflowError
    ├── InvalidArgument        bad input; carries field violations (gRPC INVALID_ARGUMENT, HTTP 400)
    ├── Unauthenticated        missing or unknown API key (UNAUTHENTICATED, 401)
    ├── PermissionDenied       key valid but not allowed (PERMISSION_DENIED, 403)
    ├── NotFound               no such object in the caller's account (NOT_FOUND, 404)
    ├── TooLarge               body over the configured limit (RESOURCE_EXHAUSTED, 413)
    ├── RateLimited            account over its rate limit (RESOURCE_EXHAUSTED, 429)
    ├── Conflict               state does not allow the change (FAILED_PRECONDITION, 409)
    └── Unavailable            a dependency is down; retry later (UNAVAILABLE, 503)

``server.api.errors`` maps them to gRPC status; the gateway maps gRPC status to HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Violation:
    """One reason a field is wrong: ``field`` is a path such as ``params[2].name``."""

    field: str
    message: str


class EventflowError(Exception):
    """Base of every error the domain raises on purpose.

    ``reason`` and ``details`` travel to callers as ``google.rpc.ErrorInfo`` (reason and
    metadata) when a subclass needs more than its status code, e.g. a template's line.
    """

    reason: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, str] = {}


class InvalidArgument(EventflowError):
    def __init__(self, message: str, violations: list[Violation] | None = None) -> None:
        super().__init__(message)
        self.violations = list(violations or [])

    @classmethod
    def from_violations(cls, violations: list[Violation]) -> InvalidArgument:
        first = violations[0]
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        return cls(f"{first.field}: {first.message}{more}", violations)


class Unauthenticated(EventflowError):
    pass


class PermissionDenied(EventflowError):
    pass


class NotFound(EventflowError):
    pass


class TooLarge(EventflowError):
    pass


class RateLimited(EventflowError):
    pass


class Conflict(EventflowError):
    pass


class Unavailable(EventflowError):
    pass
