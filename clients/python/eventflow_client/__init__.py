"""Python client of eventflow over the generated gRPC stubs.

Exceptions (all raised by both clients)::

    EventflowError            any failed call; .code is the gRPC status name
    ├── InvalidArgumentError  .violations: list of (field, message)
    ├── AuthenticationError   missing or unknown API key
    ├── NotFoundError
    ├── TooLargeError         event over the size limit
    ├── RateLimitedError      over the account's rate limit; retry later
    └── UnavailableError      server down or shutting down; retry
"""

from eventflow_client.client import AsyncClient, Client, EventResult, StoredEvent
from eventflow_client.errors import (
    AuthenticationError,
    EventflowError,
    InvalidArgumentError,
    NotFoundError,
    RateLimitedError,
    TooLargeError,
    UnavailableError,
)

__all__ = [
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "EventResult",
    "EventflowError",
    "InvalidArgumentError",
    "NotFoundError",
    "RateLimitedError",
    "StoredEvent",
    "TooLargeError",
    "UnavailableError",
]
