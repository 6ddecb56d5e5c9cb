"""Events straight to protobuf wire bytes: the one encoder of ``GenerateEventRequest``.

Building a upb message per event and then copying every one into a
``GenerateEventsRequest`` cost the gateway about a fifth of its CPU. Instead each event
is encoded once to wire bytes (the top-level fields here, each param's
``google.protobuf.Value`` by ``values.value_encoder``: the C codec, or pure Python), and
a batch is the concatenation of those bytes (``batch_bytes``), sent through a raw-bytes
method. ``proto.input_to_request`` parses the same bytes when a message is wanted.

The history reads answer the same way (``stored_event``): protobuf would write a stored
event's object values in its maps' hash order, these bytes keep the order the caller sent.

Field numbers: proto/eventflow/v1/events.proto.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from google.protobuf import timestamp_pb2

from server.codec import values
from server.ingest.model import JSON, MISSING, EventInput

_ONE_BYTE = [bytes((n,)) for n in range(0x80)]
# Tags (field number << 3 | wire type 2 = length-delimited, 0 = varint).
_TYPE_KEY, _KEY_VALUE, _PARAM, _MESSAGE_ID, _OCCURRED = b"\x0a", b"\x12", b"\x1a", b"\x22", b"\x2a"
_LEGACY_V1 = b"\x30\x01"
_PARAM_NAME, _PARAM_VALUE = b"\x0a", b"\x12"
_EVENTS = b"\x0a"  # GenerateEventsRequest.events
_STORED_PARAM = b"\x22"  # StoredEvent.params
_COUNT_EACH_EVENT = b"\x10\x01"  # GenerateEventsRequest.count_each_event = true


def varint(n: int) -> bytes:
    """A non-negative integer as a protobuf varint."""
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


def _timestamp(moment: datetime) -> bytes:
    ts = timestamp_pb2.Timestamp()
    values.dt_to_ts(moment, ts)
    raw: bytes = ts.SerializeToString()
    return raw


def _param(name: str, value: JSON, encode: Callable[[JSON], bytes]) -> bytes:
    """One serialized ``EventParam`` (its payload)."""
    raw_name = name.encode()
    param = (_PARAM_NAME + varint(len(raw_name)) + raw_name) if raw_name else b""
    if value is not MISSING:
        try:
            raw = encode(value)
        except RecursionError:  # past the C codec's 200 levels: only built in-process
            raw = values.pure_value_bytes(value)
        param += _PARAM_VALUE + varint(len(raw)) + raw
    return param


def event_bytes(event: EventInput) -> bytes:
    """The serialized ``GenerateEventRequest`` of ``event``."""
    encode = values.value_encoder()
    out = bytearray()
    _put(out, _TYPE_KEY, event.event_type_key.encode())
    _put(out, _KEY_VALUE, event.key_value.encode())
    for name, value in event.params:
        _put(out, _PARAM, _param(name, value, encode), always=True)
    _put(out, _MESSAGE_ID, event.message_id.encode())
    if event.occurred is not None:
        _put(out, _OCCURRED, _timestamp(event.occurred), always=True)
    if event.legacy_v1:
        out += _LEGACY_V1
    return bytes(out)


def stored_event(fields: bytes, params: Iterable[dict[str, JSON]]) -> bytes:
    """A serialized ``StoredEvent``: ``fields`` (the message's other fields, serialized)
    and the stored body's params (``{"name", "value"}``), written in their order."""
    encode = values.value_encoder()
    out = bytearray(fields)
    for p in params:
        _put(out, _STORED_PARAM, _param(p["name"], p.get("value", MISSING), encode),
             always=True)
    return bytes(out)


def events_page(events: Iterable[bytes], next_page_token: str) -> bytes:
    """A serialized ``ListEventsResponse`` of serialized ``StoredEvent``s."""
    return messages(1, events) + text_field(2, next_page_token)


def messages(number: int, payloads: Iterable[bytes]) -> bytes:
    """Serialized messages (``payloads``) as the elements of repeated message field
    ``number``, or one singular one."""
    out = bytearray()
    tag = varint(number << 3 | 2)
    for raw in payloads:
        _put(out, tag, raw, always=True)
    return bytes(out)


def number_field(number: int, value: int) -> bytes:
    """A non-negative integer field (left out when 0, as proto3 does)."""
    return varint(number << 3) + varint(value) if value else b""


def text_field(number: int, text: str) -> bytes:
    """A string field (left out when empty, as proto3 does)."""
    out = bytearray()
    _put(out, varint(number << 3 | 2), text.encode())
    return bytes(out)


def batch_bytes(events: Sequence[bytes], *, count_each_event: bool = True) -> bytes:
    """A serialized ``GenerateEventsRequest`` of these serialized events."""
    parts: list[bytes] = []
    append = parts.append
    for raw in events:
        append(_EVENTS)
        append(varint(len(raw)))
        append(raw)
    if count_each_event:
        append(_COUNT_EACH_EVENT)
    return b"".join(parts)
