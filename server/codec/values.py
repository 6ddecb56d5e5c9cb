"""``google.protobuf.Value`` to and from plain JSON values, and protobuf times.

Hand-written rather than ``json_format`` because this runs per param on the ingest path.
Values go through the C codec ``server._valuecodec`` (built by ``make install``), which
works on the serialized bytes instead of making a Python object per upb field access;
the pure-Python code (below for messages, ``wirejson`` for wire bytes) is its fallback
and its specification. Which one a process uses is chosen once at start-up from
``Settings.pure_python`` (``configure``).

Object key order: a parsed message's Struct keeps none (``wirejson`` says why), so what
must keep the caller's order is decoded from the bytes received (``request_params``,
``value_from_bytes``) and encoded to bytes (``value_encoder``), on either path.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from google.protobuf import struct_pb2, timestamp_pb2
from google.protobuf.message import DecodeError

from server.codec import wirejson
from server.codec.wirejson import TooDeep
from server.config import Settings
from server.errors import InvalidArgument, Violation
from server.ingest.model import JSON, MISSING

__all__ = ["AVAILABLE", "NATIVE", "TOO_DEEP", "UNBOUNDED", "TooDeep", "build_value", "configure",
           "dt_to_ts", "native", "pure_value_bytes", "py_to_value", "request_params",
           "struct_bytes", "struct_from_bytes", "time_to_ts", "ts_to_dt", "value_encoder", "value_from_bytes",
           "value_to_py", "value_within"]

_EXACT = 2**53
UNBOUNDED = 1 << 30

AVAILABLE = False
try:
    from server import _valuecodec as native

    AVAILABLE = True
except ImportError:  # no C compiler when installed: the pure-Python code serves
    pass

# Whether the C codec is used: set by ``configure`` at start-up; tests flip it to cover
# both paths in one process.
NATIVE = AVAILABLE


def configure(settings: Settings) -> None:
    """Use the C codec in this process unless ``settings.pure_python`` (or it is not built)."""
    global NATIVE
    NATIVE = AVAILABLE and not settings.pure_python


def value_within(value: struct_pb2.Value, budget: int) -> JSON:
    """``value_to_py`` in pure Python, refusing (``TooDeep``) nesting past ``budget``.

    Every access to a upb message makes a Python object, so string leaves, the common
    case, are handled in the parent's loop without a call.
    """
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        if budget <= 0:
            raise TooDeep
        budget -= 1
        fields = value.struct_value.fields
        out: dict[str, JSON] = {}
        for key in fields:
            item = fields[key]
            if item.WhichOneof("kind") == "string_value":
                out[key] = item.string_value
            else:
                out[key] = value_within(item, budget)
        return out
    if kind == "string_value":
        return value.string_value
    if kind == "list_value":
        if budget <= 0:
            raise TooDeep
        budget -= 1
        return [value_within(item, budget) for item in value.list_value.values]
    if kind == "number_value":
        num = value.number_value
        if num.is_integer() and -_EXACT < num < _EXACT:
            return int(num)
        return num
    if kind == "bool_value":
        return value.bool_value
    if kind == "null_value":
        return None
    return MISSING


def value_to_py(value: struct_pb2.Value) -> JSON:
    """Any protobuf Value as JSON; an unset Value is ``MISSING``."""
    if NATIVE:
        try:
            return native.value_to_py(value.SerializeToString(), UNBOUNDED, MISSING)
        except ValueError:
            pass  # nested past the codec's 100 levels: only a message built in-process
    return value_within(value, UNBOUNDED)


# What both paths raise for a value nested past the caller's budget.
TOO_DEEP: tuple[type[Exception], ...] = (TooDeep, native.TooDeep) if AVAILABLE else (TooDeep,)


def pure_value_bytes(obj: JSON) -> bytes:
    """The serialized protobuf Value of ``obj`` in pure Python, members in their order."""
    return wirejson.value_bytes(obj)


def request_params(raw: bytes, budget: int) -> list[tuple[str, JSON]]:
    """The params of serialized ``GenerateEventRequest`` bytes in wire order, object keys
    too; ``TOO_DEEP`` past ``budget``, ValueError for bytes protobuf would refuse."""
    if NATIVE:
        params: list[tuple[str, JSON]] = native.request_params_to_py(raw, budget, MISSING)
        return params
    return wirejson.request_params(raw, budget, MISSING)


def value_from_bytes(raw: bytes, budget: int = UNBOUNDED) -> JSON:
    """The JSON value of serialized Value bytes, object keys in wire order."""
    if NATIVE:
        return native.value_to_py(raw, budget, MISSING)
    return wirejson.value_of(raw, budget, MISSING)


def struct_bytes(doc: dict[str, JSON]) -> bytes:
    """The serialized ``google.protobuf.Struct`` of ``doc`` (the payload of a Struct
    field), members in their order."""
    try:
        raw = value_encoder()(doc)
    except RecursionError:  # past the C codec's 200 levels: only built in-process
        raw = pure_value_bytes(doc)
    return wirejson.payloads(raw, 5)[0]


def struct_from_bytes(raw: bytes) -> dict[str, JSON]:
    """The object of a serialized ``google.protobuf.Struct`` (its payload), keys in wire
    order: read as the Value holding it."""
    doc: dict[str, JSON] = value_from_bytes(b"\x2a" + wirejson.varint(len(raw)) + raw)
    return doc


def value_encoder() -> Callable[[JSON], bytes]:
    """This process's encoder of a JSON value to serialized protobuf Value bytes: the C
    codec's (``RecursionError`` past its 200 levels) or ``pure_value_bytes``."""
    if NATIVE:
        encode: Callable[[JSON], bytes] = native.py_to_value_bytes
        return encode
    return pure_value_bytes


def py_to_value(obj: JSON, out: struct_pb2.Value | None = None) -> struct_pb2.Value:
    """``obj`` as a protobuf Value, written into ``out`` (a fresh Value) when given."""
    value = struct_pb2.Value() if out is None else out
    if NATIVE:
        try:
            value.MergeFromString(native.py_to_value_bytes(obj))
            return value
        except (DecodeError, RecursionError):
            # Nested past protobuf's decoding limit (or the codec's 200 levels): only
            # field by field, as protobuf allows in memory.
            value.Clear()
    return build_value(obj, value)


def build_value(obj: JSON, out: struct_pb2.Value | None = None) -> struct_pb2.Value:
    """``py_to_value`` in pure Python, field by field."""
    value = struct_pb2.Value() if out is None else out
    if obj is None:
        value.null_value = struct_pb2.NULL_VALUE
    elif isinstance(obj, bool):
        value.bool_value = obj
    elif isinstance(obj, (int, float)):
        value.number_value = float(obj)
    elif isinstance(obj, str):
        value.string_value = obj
    elif isinstance(obj, dict):
        fields = value.struct_value.fields
        value.struct_value.SetInParent()
        for k, v in obj.items():
            build_value(v, fields[k])
    elif isinstance(obj, list):
        lst = value.list_value
        lst.SetInParent()
        for item in obj:
            build_value(item, lst.values.add())
    else:
        raise TypeError(f"not a JSON value: {type(obj).__name__}")
    return value


# google.protobuf.Timestamp's range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
TS_MIN_SECONDS, TS_MAX_SECONDS = -62_135_596_800, 253_402_300_799
TS_RANGE = "must be a time from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"


def ts_to_dt(ts: timestamp_pb2.Timestamp, *, field: str) -> datetime | None:
    """A request's time field (``field`` names it), None when unset; InvalidArgument
    naming it when its seconds or nanos are out of the Timestamp's range."""
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    if not TS_MIN_SECONDS <= ts.seconds <= TS_MAX_SECONDS or not 0 <= ts.nanos < 10**9:
        raise InvalidArgument.from_violations([Violation(
            field, f"{TS_RANGE} (got seconds={ts.seconds}, nanos={ts.nanos})")])
    return ts.ToDatetime(tzinfo=UTC)


def time_to_ts(dt: datetime, out: timestamp_pb2.Timestamp, *, field: str) -> None:
    """A caller's time into ``out`` (naive means UTC); InvalidArgument naming ``field``
    when it falls outside the Timestamp's range once in UTC."""
    try:
        dt_to_ts(dt, out)
    except (OverflowError, ValueError):
        raise InvalidArgument.from_violations([Violation(
            field, f"{TS_RANGE} once in UTC (got {dt.isoformat()})")]) from None


def dt_to_ts(dt: datetime | None, out: timestamp_pb2.Timestamp) -> None:
    if dt is not None:
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        out.FromDatetime(dt)
