"""A protobuf ``GenerateEventRequest`` to and from an ``EventInput``.

Decoding checks the nesting rule on the way (``depth``), so nothing walks the params
again; a request whose params nest too deep is refused here, naming each such param.
The params are read from the request's wire bytes, the only place the order of an object
value's keys survives (``wirejson``): the servicers pass the bytes received.
"""

from __future__ import annotations

from eventflow.v1 import events_pb2
from server.codec import values
from server.codec.depth import MAX_DEPTH, too_deep
from server.codec.values import TOO_DEEP, TooDeep, ts_to_dt, value_within
from server.codec.wire import event_bytes
from server.errors import InvalidArgument, Violation
from server.ingest.model import JSON, MISSING, EventInput

# Reading the bytes failed: nested past MAX_DEPTH, or past what the codec reads.
_FALL_BACK: tuple[type[Exception], ...] = (*TOO_DEEP, ValueError)


def _request_params(req: events_pb2.GenerateEventRequest) -> list[tuple[str, JSON]]:
    """The params in pure Python; InvalidArgument naming every param nested too deep."""
    params: list[tuple[str, JSON]] = []
    deep: list[Violation] = []
    for index, p in enumerate(req.params):
        if not p.HasField("value"):
            params.append((p.name, MISSING))
            continue
        try:
            params.append((p.name, value_within(p.value, MAX_DEPTH)))
        except TooDeep:
            deep.append(too_deep(f"params[{index}]"))
    if deep:
        raise InvalidArgument.from_violations(deep)
    return params


def request_to_input(req: events_pb2.GenerateEventRequest, raw: bytes | None = None
                     ) -> EventInput:
    """The event of ``req``; InvalidArgument when a param value nests past ``MAX_DEPTH``.

    ``raw``: the wire bytes ``req`` was parsed from; its params, object keys included,
    keep the order they have there. Without it (a message built in-process) the order
    is the message's own, which protobuf does not keep for object keys.
    """
    if raw is None and values.NATIVE:
        # One serialization of the whole request is cheaper than one per param.
        raw = req.SerializeToString()
    if raw is not None:
        try:
            params = values.request_params(raw, MAX_DEPTH)
        except _FALL_BACK:
            # A param nests past MAX_DEPTH (or past the codec's limit, which only a
            # message built in-process can): the per-param path names each one.
            params = _request_params(req)
    else:
        params = _request_params(req)
    occurred = ts_to_dt(req.occurred, field="occurred") if req.HasField("occurred") else None
    return EventInput(
        event_type_key=req.event_type_key,
        key_value=req.key_value,
        params=params,
        message_id=req.message_id,
        occurred=occurred,
        legacy_v1=req.legacy_v1,
    )


def input_to_request(event: EventInput, out: events_pb2.GenerateEventRequest | None = None
                     ) -> events_pb2.GenerateEventRequest:
    """``event`` as a message (into ``out`` when given), from its ``wire.event_bytes``."""
    req = events_pb2.GenerateEventRequest() if out is None else out
    req.MergeFromString(event_bytes(event))
    return req
