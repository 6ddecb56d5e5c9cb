"""Events straight to protobuf wire bytes, for the gateway's hot path.

Building a ``GenerateEventRequest`` upb message per HTTP request and then copying every
one into a ``GenerateEventsRequest`` cost the gateway about a fifth of its CPU. Instead
each event is encoded once to the bytes ``input_to_request(event).SerializeToString()``
would parse as (the top-level strings here, each param's ``google.protobuf.Value`` by the
C codec ``server._valuecodec``), and the coalescer concatenates those bytes into one
``GenerateEventsRequest`` (``batch_bytes``) sent through a raw-bytes method. Without the
codec (or with ``EVENTFLOW_PURE_PYTHON=1``) the message path serializes instead.

Field numbers: proto/eventflow/v1/events.proto.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from server.api.convert import input_to_request
from server.ingest.model import MISSING, EventInput

_py_to_value_bytes: Callable[[object], bytes] | None = None
try:
    from server._valuecodec import py_to_value_bytes as _py_to_value_bytes
except ImportError:
    pass

# Whether params are encoded by the C codec (EVENTFLOW_PURE_PYTHON=1 turns it off, as in
# server.api.convert); tests flip it to cover both paths.
NATIVE = _py_to_value_bytes is not None and \
    os.environ.get("EVENTFLOW_PURE_PYTHON", "").strip() in ("", "0")

_ONE_BYTE = [bytes((n,)) for n in range(0x80)]
# Tags (field number << 3 | wire type 2 = length-delimited, 0 = varint).
_TYPE_KEY, _KEY_VALUE, _PARAM, _MESSAGE_ID = b"\x0a", b"\x12", b"\x1a", b"\x22"
_LEGACY_V1 = b"\x30\x01"
_PARAM_NAME, _PARAM_VALUE = b"\x0a", b"\x12"
_EVENTS = b"\x0a"  # GenerateEventsRequest.events
_COUNT_EACH_EVENT = b"\x10\x01"  # GenerateEventsRequest.count_each_event = true


def varint(n: int) -> bytes:
    if n < 0x80:
        return _ONE_BYTE[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _put(out: bytearray, tag: bytes, payload: bytes, *, always: bool = False) -> None:
    """A length-delimited field; proto3 leaves an empty string out, a message never."""
    if payload or always:
        out += tag
        out += varint(len(payload))
        out += payload


def _message_bytes(event: EventInput) -> bytes:
    raw: bytes = input_to_request(event).SerializeToString()
    return raw


def event_bytes(event: EventInput) -> bytes:
    """``input_to_request(event).SerializeToString()``, or bytes that parse to the same."""
    encode = _py_to_value_bytes
    if encode is None or not NATIVE or event.occurred is not None:
        return _message_bytes(event)
    out = bytearray()
    _put(out, _TYPE_KEY, event.event_type_key.encode())
    _put(out, _KEY_VALUE, event.key_value.encode())
    for name, value in event.params:
        raw_name = name.encode()
        if value is MISSING:
            param = (_PARAM_NAME + varint(len(raw_name)) + raw_name) if raw_name else b""
        else:
            try:
                raw = encode(value)
            except (RecursionError, OverflowError, TypeError):
                # Only values validation cannot have passed: the message path decides.
                return _message_bytes(event)
            param = _PARAM_VALUE + varint(len(raw)) + raw
            if raw_name:
                param = _PARAM_NAME + varint(len(raw_name)) + raw_name + param
        _put(out, _PARAM, param, always=True)
    _put(out, _MESSAGE_ID, event.message_id.encode())
    if event.legacy_v1:
        out += _LEGACY_V1
    return bytes(out)


def batch_bytes(events: Sequence[bytes]) -> bytes:
    """A serialized ``GenerateEventsRequest`` of these events, ``count_each_event`` set."""
    parts: list[bytes] = []
    append = parts.append
    for raw in events:
        append(_EVENTS)
        append(varint(len(raw)))
        append(raw)
    append(_COUNT_EACH_EVENT)
    return b"".join(parts)
