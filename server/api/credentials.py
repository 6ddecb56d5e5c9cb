"""The rule for a credential header (``authorization`` or ``x-api-key``), the same over
HTTP (the gateway, before it calls the server) and gRPC (the interceptor).

A header longer than ``MAX_CREDENTIAL_BYTES`` is refused as over-size (``TooLarge``,
part ``headers``: HTTP 431, gRPC RESOURCE_EXHAUSTED with reason TOO_LARGE), never as a
failure worth retrying; one holding anything but printable ASCII is no key at all
(``Unauthenticated``: keys and Basic credentials are ASCII, and so is gRPC metadata).
Kept free of server-side imports: the gateway loads it.
"""

from __future__ import annotations

from server.errors import TooLarge, Unauthenticated

# Keys are 32 characters; gRPC refuses metadata past 16 KiB on its own (app.server_options).
MAX_CREDENTIAL_BYTES = 4096


def checked_credential(name: str, value: str) -> str:
    """``value`` of header ``name`` when it keeps to the rule (HTTP headers arrive as
    latin-1, one character per byte, so its length is its size)."""
    if len(value) > MAX_CREDENTIAL_BYTES:
        raise TooLarge(f"the {name} header is {len(value)} bytes; the limit is "
                       f"{MAX_CREDENTIAL_BYTES}", part="headers")
    if not (value.isascii() and value.isprintable()):
        raise Unauthenticated(f"the {name} header holds characters other than printable "
                              "ASCII; API keys and Basic credentials are ASCII")
    return value
