"""What the gateway holds for its lifetime: settings, the gRPC channel and stubs.

The channel is opened in the application's lifespan, on the loop that serves requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from eventflow.v1 import events_pb2_grpc
from server.codec.received import MAX_MESSAGE_BYTES, MAX_REPLY_BYTES
from server.config import Settings
from server.gateway.coalesce import EventCoalescer, raw_generate_events

StubT = TypeVar("StubT")
EVENT_CONNECTIONS = 4
# A request over the server's limit is refused here, before a byte of it is sent: gRPC
# answers RESOURCE_EXHAUSTED without a reason, which the gateway answers as 413.
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", MAX_REPLY_BYTES),
                   ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]


class GatewayState:
    def __init__(self, settings: Settings, target: str | None = None) -> None:
        self.settings = settings
        self.target = target or settings.grpc_addr
        self._channel: grpc.aio.Channel | None = None
        self.stubs: dict[str, Any] = {}
        # What routes hold beyond the channels (helper processes), released by ``close``.
        self.closing: list[Callable[[], None]] = []

    def open(self) -> None:
        self._channel = grpc.aio.insecure_channel(self.target, options=CHANNEL_OPTIONS)
        self.events = events_pb2_grpc.EventServiceStub(self._channel)
        # Own connections for event traffic: the server's processes share its port by
        # SO_REUSEPORT, which spreads connections (not calls) over them.
        self._event_channels = [
            grpc.aio.insecure_channel(self.target, options=[
                *CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1)])
            for _ in range(EVENT_CONNECTIONS)]
        self.coalescer = EventCoalescer([raw_generate_events(c) for c in self._event_channels])
        # GenerateEvents taking a serialized request (``codec.wire.batch_bytes``).
        self.generate_events = raw_generate_events(self._channel)

    def stub(self, cls: Callable[[grpc.aio.Channel], StubT]) -> StubT:
        """The stub of a service on the gateway's channel, made once."""
        key = getattr(cls, "__name__", repr(cls))
        if key not in self.stubs:
            self.stubs[key] = cls(self.channel)
        found: StubT = self.stubs[key]
        return found

    def channel_call(self, method: str, response: Any) -> Callable[[], Any]:
        """A unary method taking serialized request bytes, on the gateway's channel once it
        is open (routes are made before the lifespan opens it)."""
        def call() -> Any:
            key = f"raw:{method}"
            if key not in self.stubs:
                self.stubs[key] = self.channel.unary_unary(
                    method, request_serializer=None, response_deserializer=response.FromString)
            return self.stubs[key]
        return call

    @property
    def channel(self) -> grpc.aio.Channel:
        assert self._channel is not None, "the gateway's lifespan has not started"
        return self._channel

    async def close(self) -> None:
        for release in self.closing:
            release()
        if self._channel is not None:
            await self._channel.close()
        for channel in getattr(self, "_event_channels", []):
            await channel.close()
