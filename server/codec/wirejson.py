"""JSON values to and from protobuf wire bytes in pure Python, object keys in wire order.

A ``google.protobuf.Struct`` is a map, and a parsed protobuf message keeps no order of
its map entries (upb iterates and serializes them in its hash table's order). The wire
does: an encoder writes the entries in the order it is given them. So the order a caller
gave an object's keys survives only when values are encoded from, and decoded to, wire
bytes directly, never through a message's map. The C codec (``server/native``) does that
on the ingest path; this module is its pure-Python twin and specification for that
purpose, byte for byte and value for value (``value_bytes`` = ``py_to_value_bytes``,
``value_of`` = ``value_to_py``, ``request_params`` = ``request_params_to_py``).

Protobuf semantics, as in the C codec: the last oneof member on the wire wins (earlier
ones still checked); repeated occurrences of a message member merge; unknown fields are
skipped; a map entry holding an unknown field is checked and left out; a key that comes
again keeps its first place and takes the last value (as a JSON object's repeated key
does in our JSON reader); strings must be UTF-8; malformed bytes raise ``ValueError``;
struct/list nesting past ``MAX_NESTING`` is a ``ValueError`` whatever the budget.
"""

from __future__ import annotations

import math
import struct
from typing import Any

__all__ = ["MAX_NESTING", "TooDeep", "payload_sizes", "payloads", "request_params", "value_bytes", "value_of",
           "varint"]

MAX_NESTING = 100
_EXACT = 2.0**53
_U64 = (1 << 64) - 1
_EXPECTED_WIRE_TYPE = (-1, 0, 1, 2, 0, 2, 2)  # Value's fields 1..6
_DOUBLE = struct.Struct("<d")

Segs = list[tuple[int, int]]


class TooDeep(Exception):
    """A struct or list entered with the depth budget spent."""


def _malformed(what: str) -> ValueError:
    return ValueError(f"malformed google.protobuf.Value: {what}")


def _varint(buf: bytes, p: int, end: int) -> tuple[int, int]:
    """A varint of at most 10 bytes, bits past 64 dropped (as protobuf does)."""
    value = 0
    for i in range(10):
        if p >= end:
            raise _malformed("truncated varint")
        b = buf[p]
        p += 1
        value |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            return value & _U64, p
    raise _malformed("varint longer than 10 bytes")


def _tag(buf: bytes, p: int, end: int) -> tuple[int, int, int]:
    """(field number, wire type, next position) of a tag of at most 5 bytes and 32 bits."""
    value = 0
    for i in range(6):
        if i == 5:
            raise _malformed("tag longer than 5 bytes")
        if p >= end:
            raise _malformed("truncated tag")
        b = buf[p]
        p += 1
        value |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            break
    if value > 0xFFFFFFFF:
        raise _malformed("tag out of range")
    if value >> 3 == 0:
        raise _malformed("field number 0")
    return value >> 3, value & 7, p


def _len(buf: bytes, p: int, end: int) -> tuple[int, int]:
    """(start, end) of a length-delimited payload."""
    n, p = _varint(buf, p, end)
    if n > end - p:
        raise _malformed("length past the end of the data")
    return p, p + n


def _skip(buf: bytes, p: int, end: int, field: int, wire_type: int, depth: int) -> int:
    """Past the value of an unknown field whose tag was just read."""
    if wire_type == 0:
        return _varint(buf, p, end)[1]
    if wire_type == 1 or wire_type == 5:
        size = 8 if wire_type == 1 else 4
        if end - p < size:
            raise _malformed(f"truncated fixed{size * 8}")
        return p + size
    if wire_type == 2:
        return _len(buf, p, end)[1]
    if wire_type == 3:
        if depth >= MAX_NESTING:
            raise _malformed("groups nested too deep")
        while True:
            if p >= end:
                raise _malformed("unterminated group")
            f, wt, p = _tag(buf, p, end)
            if wt == 4:
                if f != field:
                    raise _malformed("mismatched end of group")
                return p
            p = _skip(buf, p, end, f, wt, depth + 1)
    if wire_type == 4:
        raise _malformed("unexpected end of group")
    raise _malformed("invalid wire type")


def _text(buf: bytes, start: int, end: int) -> str:
    return buf[start:end].decode("utf-8")  # strict: a UnicodeDecodeError is a ValueError


def _named_value(buf: bytes, p: int, end: int, depth: int
                 ) -> tuple[tuple[int, int] | None, Segs, bool]:
    """A message {1 string, 2 Value} (a map entry or an EventParam): the last name's
    range (earlier ones checked), every Value payload, and whether an unknown field was
    seen."""
    name: tuple[int, int] | None = None
    found: Segs = []
    unknown = False
    while p < end:
        f, wt, p = _tag(buf, p, end)
        if f == 1 and wt == 2:
            if name is not None:
                _text(buf, *name)
            name = _len(buf, p, end)
            p = name[1]
        elif f == 2 and wt == 2:
            found.append(_len(buf, p, end))
            p = found[-1][1]
        else:
            unknown = True
            p = _skip(buf, p, end, f, wt, depth)
    return name, found, unknown


def _enter(budget: float, depth: int) -> None:
    if budget <= 0:
        raise TooDeep
    if depth >= MAX_NESTING:
        raise _malformed(f"nested deeper than {MAX_NESTING} levels")


def _struct(buf: bytes, segs: Segs, budget: float, depth: int, missing: Any) -> dict[str, Any]:
    _enter(budget, depth)
    out: dict[str, Any] = {}
    for p, end in segs:
        while p < end:
            f, wt, p = _tag(buf, p, end)
            if f == 1 and wt == 2:
                start, p = _len(buf, p, end)
                name, found, unknown = _named_value(buf, start, p, depth + 1)
                key = _text(buf, *name) if name is not None else ""
                value = _value(buf, found, math.inf if unknown else budget - 1, depth + 1,
                               missing)
                if not unknown:
                    out[key] = value
            else:
                p = _skip(buf, p, end, f, wt, depth + 1)
    return out


def _list(buf: bytes, segs: Segs, budget: float, depth: int, missing: Any) -> list[Any]:
    _enter(budget, depth)
    out: list[Any] = []
    for p, end in segs:
        while p < end:
            f, wt, p = _tag(buf, p, end)
            if f == 1 and wt == 2:
                item = _len(buf, p, end)
                out.append(_value(buf, [item], budget - 1, depth + 1, missing))
                p = item[1]
            else:
                p = _skip(buf, p, end, f, wt, depth + 1)
    return out


def _value(buf: bytes, segs: Segs, budget: float, depth: int, missing: Any) -> Any:
    """The Value made of the (merged) payloads ``segs``; none at all is ``missing``."""
    kind, number, double, text = 0, 0, 0.0, (0, 0)
    run: Segs = []  # payloads of the current struct_value / list_value run
    for p, end in segs:
        while p < end:
            f, wt, p = _tag(buf, p, end)
            if f > 6 or wt != _EXPECTED_WIRE_TYPE[f]:
                p = _skip(buf, p, end, f, wt, depth)
                continue
            if kind == 3:  # a superseded string is still checked
                _text(buf, *text)
            elif kind in (5, 6) and kind != f:  # a superseded container likewise
                (_struct if kind == 5 else _list)(buf, run, math.inf, depth, missing)
                run = []
            if f == 1 or f == 4:
                number, p = _varint(buf, p, end)
            elif f == 2:
                if end - p < 8:
                    raise _malformed("truncated number_value")
                double, p = _DOUBLE.unpack_from(buf, p)[0], p + 8
            elif f == 3:
                text = _len(buf, p, end)
                p = text[1]
            else:  # 5, 6: the same member again merges
                run.append(_len(buf, p, end))
                p = run[-1][1]
            kind = f
    if kind == 0:
        return missing
    if kind == 1:
        return None
    if kind == 2:
        if math.isfinite(double) and double.is_integer() and -_EXACT < double < _EXACT:
            return int(double)
        return double
    if kind == 3:
        return _text(buf, *text)
    if kind == 4:
        return number != 0
    return (_struct if kind == 5 else _list)(buf, run, budget, depth, missing)


def _budget(budget: int) -> float:
    return math.inf if budget >= 1 << 62 else budget


def value_of(data: bytes, budget: int, missing: Any) -> Any:
    """The JSON value of serialized Value bytes; ``TooDeep`` entering a container with
    ``budget`` spent (each level spends one); an unset Value is ``missing``."""
    buf = bytes(data)
    return _value(buf, [(0, len(buf))], _budget(budget), 0, missing)


def request_params(data: bytes, budget: int, missing: Any) -> list[tuple[str, Any]]:
    """The (name, value) params of a serialized ``GenerateEventRequest`` (field 3), in
    wire order; other fields are skipped, their wire structure checked."""
    buf = bytes(data)
    out: list[tuple[str, Any]] = []
    p, end = 0, len(buf)
    limit = _budget(budget)
    while p < end:
        f, wt, p = _tag(buf, p, end)
        if f == 3 and wt == 2:
            start, p = _len(buf, p, end)
            name, found, _ = _named_value(buf, start, p, 0)
            out.append((_text(buf, *name) if name is not None else "",
                        _value(buf, found, limit, 0, missing)))
        else:
            p = _skip(buf, p, end, f, wt, 0)
    return out


def payloads(data: bytes, number: int) -> list[bytes]:
    """The payloads of length-delimited field ``number`` at the top of a serialized
    message, in wire order (a repeated message field's elements, or the parts of a
    singular one, which protobuf merges)."""
    buf = bytes(data)
    out: list[bytes] = []
    p, end = 0, len(buf)
    while p < end:
        f, wt, p = _tag(buf, p, end)
        if f == number and wt == 2:
            start, p = _len(buf, p, end)
            out.append(buf[start:p])
        else:
            p = _skip(buf, p, end, f, wt, 0)
    return out


def payload_sizes(data: bytes, number: int, most: int) -> list[int] | None:
    """The lengths of field ``number``'s payloads at the top of a serialized message, in
    wire order, read without copying or parsing them; None when the message has more than
    ``most`` top-level fields (the scan stops there). Malformed bytes raise ``ValueError``."""
    out: list[int] = []
    p, end, seen = 0, len(data), 0
    while p < end:
        seen += 1
        if seen > most:
            return None
        f, wt, p = _tag(data, p, end)
        if f == number and wt == 2:
            start, p = _len(data, p, end)
            out.append(p - start)
        else:
            p = _skip(data, p, end, f, wt, 0)
    return out


# ---------------------------------------------------------------------------------------
# Encoding


def varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    return tag + varint(len(payload)) + payload


def value_bytes(obj: Any) -> bytes:
    """The serialized Value of a JSON value, object members in their order: the bytes the
    C codec's ``py_to_value_bytes`` writes (without its 200-level limit)."""
    if isinstance(obj, str):
        return _field(b"\x1a", obj.encode())
    if obj is None:
        return b"\x08\x00"
    if isinstance(obj, bool):
        return b"\x20\x01" if obj else b"\x20\x00"
    if isinstance(obj, (int, float)):
        return b"\x11" + _DOUBLE.pack(float(obj))
    if isinstance(obj, dict):
        entries = []
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"object keys must be str, not {type(key).__name__}")
            entries.append(_field(b"\x0a", _field(b"\x0a", key.encode())
                                  + _field(b"\x12", value_bytes(value))))
        return _field(b"\x2a", b"".join(entries))
    if isinstance(obj, list):
        return _field(b"\x32", b"".join(_field(b"\x0a", value_bytes(item)) for item in obj))
    raise TypeError(f"not a JSON value: {type(obj).__name__}")
