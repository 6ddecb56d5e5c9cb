"""Conversions between protobuf messages and plain JSON values.

Hand-written rather than ``json_format`` because this runs per param on the ingest path.
``google.protobuf.Value`` params go through the C codec ``server._valuecodec`` (built by
``make install``), which works on the serialized bytes instead of making a Python object
per upb field access; the pure-Python code below is its fallback and its specification.
``EVENTFLOW_PURE_PYTHON=1`` (read once, at import) forces the fallback.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2
from google.protobuf.message import DecodeError

from eventflow.v1 import events_pb2
from server.ingest.model import JSON, MISSING, EventInput
from server.ingest.validation import MAX_DEPTH

_EXACT = 2**53
_UNBOUNDED = 1 << 30

# Whether the native codec is used; tests flip it to cover both paths in one process.
NATIVE = False
try:
    from server._valuecodec import TooDeep as _NativeTooDeep
    from server._valuecodec import py_to_value_bytes as _py_to_value_bytes
    from server._valuecodec import request_params_to_py as _request_params_to_py
    from server._valuecodec import value_to_py as _native_value_to_py

    NATIVE = os.environ.get("EVENTFLOW_PURE_PYTHON", "").strip() in ("", "0")
except ImportError:
    pass


class _TooDeep(Exception):
    pass


def _param_value(value: struct_pb2.Value, budget: int) -> JSON:
    """``value_to_py`` for the ingest path: also refuses nesting past the budget.

    About half of an event's server-side cost was here (every access to a upb message
    makes a Python object), so string leaves, the common case, are handled in the
    parent's loop without a call, and the depth rule is checked on the way instead
    of by a second walk in validation.
    """
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        if budget <= 0:
            raise _TooDeep
        budget -= 1
        fields = value.struct_value.fields
        out: dict[str, JSON] = {}
        for key in fields:
            item = fields[key]
            if item.WhichOneof("kind") == "string_value":
                out[key] = item.string_value
            else:
                out[key] = _param_value(item, budget)
        return out
    if kind == "string_value":
        return value.string_value
    if kind == "list_value":
        if budget <= 0:
            raise _TooDeep
        budget -= 1
        return [_param_value(item, budget) for item in value.list_value.values]
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
            return _native_value_to_py(value.SerializeToString(), _UNBOUNDED, MISSING)
        except ValueError:
            pass  # nested past the codec's 100 levels: only a message built in-process
    return _param_value(value, _UNBOUNDED)


def py_to_value(obj: JSON, out: struct_pb2.Value | None = None) -> struct_pb2.Value:
    """``obj`` as a protobuf Value, written into ``out`` (a fresh Value) when given."""
    value = struct_pb2.Value() if out is None else out
    if NATIVE:
        try:
            value.MergeFromString(_py_to_value_bytes(obj))
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


def ts_to_dt(ts: timestamp_pb2.Timestamp) -> datetime | None:
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return ts.ToDatetime(tzinfo=UTC)


def dt_to_ts(dt: datetime | None, out: timestamp_pb2.Timestamp) -> None:
    if dt is not None:
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        out.FromDatetime(dt)


def _request_params(req: events_pb2.GenerateEventRequest) -> tuple[list[tuple[str, JSON]], bool]:
    """The params in pure Python, and whether all of them nest at most ``MAX_DEPTH``."""
    params: list[tuple[str, JSON]] = []
    depth_checked = True
    for p in req.params:
        if not p.HasField("value"):
            params.append((p.name, MISSING))
            continue
        value = p.value
        try:
            params.append((p.name, _param_value(value, MAX_DEPTH)))
        except _TooDeep:
            # Validation walks it again and names the param.
            params.append((p.name, value_to_py(value)))
            depth_checked = False
    return params, depth_checked


def request_to_input(req: events_pb2.GenerateEventRequest) -> EventInput:
    if NATIVE:
        # One serialization of the whole request is cheaper than one per param.
        try:
            params = _request_params_to_py(req.SerializeToString(), MAX_DEPTH, MISSING)
            depth_checked = True
        except (_NativeTooDeep, ValueError):
            # A param nests past MAX_DEPTH (or past the codec's limit, which only a
            # message built in-process can): the per-param path keeps what validation
            # needs to name it.
            params, depth_checked = _request_params(req)
    else:
        params, depth_checked = _request_params(req)
    occurred = ts_to_dt(req.occurred) if req.HasField("occurred") else None
    return EventInput(
        event_type_key=req.event_type_key,
        key_value=req.key_value,
        params=params,
        message_id=req.message_id,
        occurred=occurred,
        legacy_v1=req.legacy_v1,
        depth_checked=depth_checked,
    )


def input_to_request(event: EventInput, out: events_pb2.GenerateEventRequest | None = None
                     ) -> events_pb2.GenerateEventRequest:
    req = events_pb2.GenerateEventRequest() if out is None else out
    req.event_type_key = event.event_type_key
    req.key_value = event.key_value
    for name, value in event.params:
        param = req.params.add(name=name)
        if value is not MISSING:
            py_to_value(value, param.value)
    if event.message_id:
        req.message_id = event.message_id
    if event.occurred is not None:
        dt_to_ts(event.occurred, req.occurred)
    req.legacy_v1 = event.legacy_v1
    return req


def params_to_proto(params: list[dict[str, Any]], out: Any) -> None:
    for p in params:
        param = out.add(name=p.get("name", ""))
        py_to_value(p.get("value"), param.value)
