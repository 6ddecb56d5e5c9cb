"""The socket format between the serving processes and the ingest writer process.

A frame is a 4-byte big-endian length and an orjson document. A batch is a list of
``[account_id, event_type_key, key_value, body, message_id, occurred_us, param_types]``
(``param_types``: ``[[name, JSON type], ...]``); its answer is
``{"r": [[event_id, duplicate], ...]}`` in the same order, or ``{"e": reason}`` when
nothing was stored.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from server.ingest.model import ValidEvent, WriteResult

__all__ = ["HEADER", "MAX_FRAME", "FrameBuffer", "decode_answer", "decode_batch",
           "encode_answer", "encode_batch", "encode_refusal"]

HEADER = struct.Struct(">I")
MAX_FRAME = 256 * 1024 * 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _frame(doc: Any) -> bytes:
    payload = orjson.dumps(doc)
    return HEADER.pack(len(payload)) + payload


def encode_batch(events: Sequence[ValidEvent]) -> bytes:
    return _frame([
        [ev.account_id, ev.event_type_key, ev.key_value, ev.body, ev.message_id,
         None if ev.occurred is None else (ev.occurred - _EPOCH) // _MICROSECOND,
         ev.param_types]
        for ev in events])


def decode_batch(payload: bytes) -> list[ValidEvent]:
    """The events of one batch frame's payload; ValueError or TypeError if it is malformed."""
    return [ValidEvent(account_id=a, event_type_key=t, key_value=k, body=b, message_id=m,
                       occurred=None if o is None else _EPOCH + timedelta(microseconds=o),
                       param_types=p)
            for a, t, k, b, m, o, p in orjson.loads(payload)]


def encode_answer(results: Sequence[WriteResult]) -> bytes:
    return _frame({"r": [[r.event_id, 1 if r.duplicate else 0] for r in results]})


def encode_refusal(reason: str) -> bytes:
    return _frame({"e": reason})


def decode_answer(payload: bytes) -> list[WriteResult] | str:
    """The results of an answer frame's payload, or the reason nothing was stored."""
    answer = orjson.loads(payload)
    if "e" in answer:
        return str(answer["e"])
    return [WriteResult(int(i), bool(d)) for i, d in answer["r"]]


class FrameBuffer:
    """Bytes read from one connection, cut into frame payloads as they complete."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; the payloads it completed. ValueError for an over-size frame."""
        buf = self._buf
        buf += data
        out = []
        while len(buf) >= HEADER.size:
            (size,) = HEADER.unpack_from(buf)
            if size > MAX_FRAME:
                raise ValueError(f"frame of {size} bytes")
            if len(buf) < HEADER.size + size:
                break
            out.append(bytes(buf[HEADER.size:HEADER.size + size]))
            del buf[:HEADER.size + size]
        return out
