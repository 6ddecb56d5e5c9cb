"""Concurrent single-event HTTP requests travel to the server together, in one call.

A gRPC call costs the gateway and the server far more than validating and storing one
event, so each caller's request joins the next ``GenerateEvents`` call of its credentials
and is answered from its own result. Nothing waits on a timer: a lone request goes out
at once; requests that arrive while calls are in flight leave together when one returns.

Events arrive already serialized (``server.codec.wire.event_bytes``); a call's request
is their concatenation (``wire.batch_bytes``), sent through a method without a request
serializer, so no protobuf message is built or copied on the way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from eventflow.v1 import events_pb2
from server.codec.received import MAX_MESSAGE_BYTES
from server.codec.wire import batch_bytes

GENERATE_EVENTS = "/eventflow.v1.EventService/GenerateEvents"
MAX_EVENTS_PER_CALL = 500
# A call's request stays within what the server's gRPC takes (MAX_MESSAGE_BYTES), with room
# for each event's tag and length.
MAX_BYTES_PER_CALL = MAX_MESSAGE_BYTES - 64 * 1024
EVENT_FRAMING = 6
# Calls in flight per credential; each goes out on the next connection in turn.
MAX_IN_FLIGHT = 2

Metadata = tuple[tuple[str, str], ...]


def batch_ends(sizes: Sequence[int], *, most: int = MAX_EVENTS_PER_CALL,
               most_bytes: int = MAX_BYTES_PER_CALL) -> list[int]:
    """Where to cut a run of serialized events of these ``sizes`` into ``GenerateEvents``
    calls of at most ``most`` events and ``most_bytes`` bytes: the end (exclusive) of each
    call's events, in order. An event over ``most_bytes`` alone goes in a call of its own
    (the server refuses it as too large)."""
    ends: list[int] = []
    count = size = 0
    for i, n in enumerate(sizes):
        if count and (count == most or size + n + EVENT_FRAMING > most_bytes):
            ends.append(i)
            count = size = 0
        count += 1
        size += n + EVENT_FRAMING
    if count:
        ends.append(len(sizes))
    return ends


def raw_generate_events(channel: grpc.aio.Channel) -> Any:
    """``GenerateEvents`` on ``channel`` taking a serialized request (bytes)."""
    return channel.unary_unary(
        GENERATE_EVENTS, request_serializer=None,
        response_deserializer=events_pb2.GenerateEventsResponse.FromString)


@dataclass
class _Group:
    pending: list[tuple[bytes, asyncio.Future[events_pb2.EventResult]]] = \
        field(default_factory=list)
    in_flight: int = 0


class EventCoalescer:
    def __init__(self, calls: Sequence[Any]) -> None:
        """``calls``: ``raw_generate_events`` multicallables, one per connection."""
        self._calls = list(calls)
        self._next = 0
        self._groups: dict[Metadata, _Group] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, meta: Metadata, event: bytes) -> events_pb2.EventResult:
        """The result of this serialized ``GenerateEventRequest``; raises the call's gRPC
        error (auth, rate limit, down)."""
        group = self._groups.get(meta)
        if group is None:
            group = self._groups[meta] = _Group()
        future: asyncio.Future[events_pb2.EventResult] = \
            asyncio.get_running_loop().create_future()
        group.pending.append((event, future))
        if group.in_flight < MAX_IN_FLIGHT:
            self._flush(meta, group)
        return await future

    def _flush(self, meta: Metadata, group: _Group) -> None:
        while group.pending and group.in_flight < MAX_IN_FLIGHT:
            end = batch_ends([len(raw) for raw, _ in group.pending[:MAX_EVENTS_PER_CALL]])[0]
            batch = group.pending[:end]
            del group.pending[:end]
            group.in_flight += 1
            task = asyncio.create_task(self._call(meta, group, batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _call(self, meta: Metadata, group: _Group,
                    batch: list[tuple[bytes, asyncio.Future[events_pb2.EventResult]]]) -> None:
        call = self._calls[self._next]
        self._next = (self._next + 1) % len(self._calls)
        try:
            reply = await call(batch_bytes([raw for raw, _ in batch]), metadata=meta)
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            for (_, future), result in zip(batch, reply.results):
                if not future.done():
                    future.set_result(result)
        finally:
            group.in_flight -= 1
            if group.pending:
                self._flush(meta, group)
            elif group.in_flight == 0:
                self._groups.pop(meta, None)
