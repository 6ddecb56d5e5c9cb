"""AsyncClient (grpc.aio) and Client (a small blocking wrapper) for EventService."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

import grpc
from google.protobuf import struct_pb2

from eventflow.v1 import events_pb2, events_pb2_grpc
from eventflow_client.errors import translate

ParamsLike = Mapping[str, Any] | Sequence[tuple[str, Any]] | Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class EventResult:
    event_id: int
    duplicate: bool = False
    violations: list[tuple[str, str]] = field(default_factory=list)
    status: str = "ACCEPTED"

    @property
    def ok(self) -> bool:
        return self.status == "ACCEPTED"


@dataclass(frozen=True)
class StoredEvent:
    id: int
    event_type_key: str
    key_value: str
    params: list[dict[str, Any]]
    received_at: datetime
    body: dict[str, Any]


def _value(obj: Any, out: struct_pb2.Value) -> None:
    if obj is None:
        out.null_value = struct_pb2.NULL_VALUE
    elif isinstance(obj, bool):
        out.bool_value = obj
    elif isinstance(obj, (int, float)):
        out.number_value = float(obj)
    elif isinstance(obj, str):
        out.string_value = obj
    elif isinstance(obj, Mapping):
        out.struct_value.SetInParent()
        for k, v in obj.items():
            _value(v, out.struct_value.fields[str(k)])
    elif isinstance(obj, (list, tuple)):
        out.list_value.SetInParent()
        for item in obj:
            _value(item, out.list_value.values.add())
    else:
        raise TypeError(f"param value of type {type(obj).__name__} is not JSON")


def _pairs(params: ParamsLike | None) -> Iterable[tuple[str, Any]]:
    if params is None:
        return []
    if isinstance(params, Mapping):
        return list(params.items())
    pairs = []
    for p in params:
        if isinstance(p, Mapping):
            pairs.append((p["name"], p.get("value")))
        else:
            pairs.append((p[0], p[1]))
    return pairs


def build_request(event_type_key: str, *, key_value: str = "", params: ParamsLike | None = None,
                  message_id: str = "") -> events_pb2.GenerateEventRequest:
    req = events_pb2.GenerateEventRequest(event_type_key=event_type_key, key_value=key_value,
                                          message_id=message_id)
    for name, value in _pairs(params):
        _value(value, req.params.add(name=name).value)
    return req


def _stored(e: events_pb2.StoredEvent) -> StoredEvent:
    body = json.loads(e.body_json)
    return StoredEvent(id=e.id, event_type_key=e.event_type_key, key_value=e.key_value,
                       params=body.get("params", []),
                       received_at=e.received_at.ToDatetime(tzinfo=UTC), body=body)


def _result(r: events_pb2.EventResult) -> EventResult:
    return EventResult(event_id=r.event_id, duplicate=r.duplicate, status=r.status,
                       violations=[(v.field, v.description) for v in r.violations])


class AsyncClient:
    """``async with AsyncClient("127.0.0.1:50051", api_key=KEY) as c: await c.generate_event(...)``"""

    def __init__(self, target: str, *, api_key: str, timeout: float = 10.0,
                 channel: grpc.aio.Channel | None = None) -> None:
        self._channel = channel or grpc.aio.insecure_channel(target)
        self._stub = events_pb2_grpc.EventServiceStub(self._channel)
        token = base64.b64encode(f"api:{api_key}".encode()).decode()
        self._meta = (("authorization", f"Basic {token}"),)
        self._timeout = timeout

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def _call(self, method: Any, request: Any) -> Any:
        try:
            return await method(request, metadata=self._meta, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise translate(exc) from None

    async def generate_event(self, event_type_key: str, *, key_value: str = "",
                             params: ParamsLike | None = None, message_id: str = "") -> int:
        """Store one event; returns its id once committed."""
        req = build_request(event_type_key, key_value=key_value, params=params,
                            message_id=message_id)
        reply = await self._call(self._stub.GenerateEvent, req)
        return int(reply.event_id)

    async def generate_events(self, events: Sequence[events_pb2.GenerateEventRequest]
                              ) -> list[EventResult]:
        reply = await self._call(self._stub.GenerateEvents,
                                 events_pb2.GenerateEventsRequest(events=list(events)))
        return [_result(r) for r in reply.results]

    async def get_event(self, event_id: int) -> StoredEvent:
        return _stored(await self._call(self._stub.GetEvent,
                                        events_pb2.GetEventRequest(id=event_id)))

    async def list_events(self, *, event_type_key: str = "", key_value: str = "",
                          page_size: int = 0, page_token: str = ""
                          ) -> tuple[list[StoredEvent], str]:
        reply = await self._call(self._stub.ListEvents, events_pb2.ListEventsRequest(
            event_type_key=event_type_key, key_value=key_value, page_size=page_size,
            page_token=page_token))
        return [_stored(e) for e in reply.events], reply.next_page_token

    async def list_event_types(self) -> list[tuple[str, int]]:
        reply = await self._call(self._stub.ListEventTypes, events_pb2.ListEventTypesRequest())
        return [(t.key, t.event_count) for t in reply.event_types]


class Client:
    """Blocking wrapper: runs an AsyncClient on a private event loop thread."""

    def __init__(self, target: str, *, api_key: str, timeout: float = 10.0) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._async = self._run(self._make(target, api_key, timeout))

    async def _make(self, target: str, api_key: str, timeout: float) -> AsyncClient:
        return AsyncClient(target, api_key=api_key, timeout=timeout)

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._run(self._async.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()

    def generate_event(self, event_type_key: str, *, key_value: str = "",
                       params: ParamsLike | None = None, message_id: str = "") -> int:
        return int(self._run(self._async.generate_event(
            event_type_key, key_value=key_value, params=params, message_id=message_id)))

    def get_event(self, event_id: int) -> StoredEvent:
        return self._run(self._async.get_event(event_id))  # type: ignore[no-any-return]

    def list_events(self, **kwargs: Any) -> tuple[list[StoredEvent], str]:
        return self._run(self._async.list_events(**kwargs))  # type: ignore[no-any-return]
