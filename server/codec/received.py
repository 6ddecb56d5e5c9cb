"""A request message beside the wire bytes it was parsed from.

The object values of a request travel as ``google.protobuf.Struct`` maps, and the parsed
message keeps no order of their keys (``wirejson``). A servicer that must keep the
caller's order (the event methods: an event is stored as received) registers its method
with ``reader(Message.FromString)`` and gets a ``Received``: the message for its plain
fields, the bytes for the ordered values (``values.request_params``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from server.codec.wirejson import payloads

__all__ = ["Received", "reader"]

M = TypeVar("M")


@dataclass(frozen=True, slots=True)
class Received(Generic[M]):
    message: M
    raw: bytes

    def parts(self, number: int) -> list[bytes]:
        """The wire bytes of each element of the repeated message field ``number``, in
        order: ``message``'s list of that field, element for element."""
        return payloads(self.raw, number)

    def part(self, number: int) -> bytes:
        """The wire bytes of the singular message field ``number`` (its parts joined, as
        protobuf merges them)."""
        return b"".join(payloads(self.raw, number))


def reader(parse: Callable[[bytes], M]) -> Callable[[bytes], Received[M]]:
    """A gRPC request deserializer that keeps the bytes beside the message ``parse`` makes
    (its DecodeError passes on, for the interceptor's INVALID_ARGUMENT)."""
    def read(raw: bytes) -> Received[M]:
        return Received(parse(raw), raw)
    return read
