"""A request message beside the wire bytes it was parsed from.

The object values of a request travel as ``google.protobuf.Struct`` maps, and the parsed
message keeps no order of their keys (``wirejson``). A servicer that must keep the
caller's order (the event methods: an event is stored as received) registers its method
with ``reader(Message.FromString)`` and gets a ``Received``: the message for its plain
fields, the bytes for the ordered values (``values.request_params``).

``bounded`` puts a size bound in front of any deserializer: a request longer than its
method can legitimately be is refused on its length alone (``TooLarge``), before a byte of
it is parsed, so a 23 MB message costs the serving loop nothing but the comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from server.codec.wirejson import payload_sizes, payloads
from server.errors import InvalidArgument, TooLarge, Violation

__all__ = ["MAX_MESSAGE_BYTES", "MAX_REPLY_BYTES", "Bound", "Parts", "Received", "bounded",
           "reader"]

M = TypeVar("M")
# The most any request may take (the gRPC server's grpc.max_receive_message_length). gRPC
# refuses a longer message on its length prefix, as RESOURCE_EXHAUSTED "Received message
# larger than max", without reading it: no byte of it reaches Python. Messages within it
# are received whole before a method's own ``Bound`` (usually far lower) judges them, and
# that costs the receiving serving process CPU in proportion to their size, so this is
# kept to what a legitimate request needs: a GenerateEvents of 500 typical events, a
# 4 MiB bulk body after conversion (docs/reliability.md, scenario 18).
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
# The most an answer may take (a page of stored events can be large).
MAX_REPLY_BYTES = 32 * 1024 * 1024


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


@dataclass(frozen=True, slots=True)
class Bound:
    """The most bytes one request of a method may take, and how to say why: ``what`` names
    the request (``the GenerateEvent request``), ``how`` the limit's origin and the setting
    that moves it (``8 x EVENTFLOW_MAX_EVENT_BYTES + 65536; raise ...``). ``parts``: the
    bound of each element of a repeated field, checked before parsing too."""

    max_bytes: int
    what: str
    how: str
    parts: Parts | None = None

    def check(self, size: int) -> None:
        if size > self.max_bytes:
            raise TooLarge(f"{self.what} is {size} bytes; the limit is {self.max_bytes} "
                           f"bytes ({self.how})")


def bounded(parse: Callable[[bytes], M], bound: Bound) -> Callable[[bytes], M]:
    """``parse`` behind ``bound``: a longer request raises ``TooLarge`` (the interceptor
    answers it as RESOURCE_EXHAUSTED, reason TOO_LARGE) without being parsed."""
    def read(raw: bytes) -> M:
        bound.check(len(raw))
        if bound.parts is not None:
            bound.parts.check(raw)
        return parse(raw)
    return read


@dataclass(frozen=True, slots=True)
class Parts:
    """A batch's elements (repeated field ``number``, called ``name``): at most ``most``
    of them, each within ``each``. Counted on the wire by their lengths alone, so a batch
    holding one huge element is refused without the time parsing it would take."""

    number: int
    name: str
    most: int
    each: Bound

    def check(self, raw: bytes) -> None:
        try:
            # A few fields besides the elements (a batch's flags) are fine.
            sizes = payload_sizes(raw, self.number, self.most + 8)
        except ValueError:
            return  # malformed: protobuf's parse says so, as for any request
        if sizes is None or len(sizes) > self.most:
            raise InvalidArgument.from_violations([Violation(
                self.name, f"holds more than {self.most} {self.name}; send at most "
                f"{self.most} per call")])
        for i, size in enumerate(sizes):
            Bound(self.each.max_bytes, f"{self.name}[{i}]", self.each.how).check(size)
