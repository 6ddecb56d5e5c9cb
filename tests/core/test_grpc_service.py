"""gRPC-only contract: health, reflection, batch and stream ingest, message-id de-duplication,
and the Python client's error translation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from eventflow.v1 import events_pb2, events_pb2_grpc
from eventflow_client import (
    AsyncClient,
    AuthenticationError,
    InvalidArgumentError,
    NotFoundError,
    RateLimitedError,
    TooLargeError,
)
from eventflow_client.client import build_request
from tests.core.seed import SEED_BODIES
from tests.support import Backends, Stack, start_stack


async def test_health_reports_serving(stack: Stack) -> None:
    """grpc.health.v1 answers SERVING for the server and for EventService."""
    stub = health_pb2_grpc.HealthStub(stack.channel)
    for service in ("", "eventflow.v1.EventService"):
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_event_service(stack: Stack) -> None:
    """Server reflection lists EventService, so grpcurl works without the proto files."""
    stub = reflection_pb2_grpc.ServerReflectionStub(stack.channel)

    async def requests():  # type: ignore[no-untyped-def]
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    async for reply in stub.ServerReflectionInfo(requests()):
        names = {s.name for s in reply.list_services_response.service}
        assert "eventflow.v1.EventService" in names
        break


@pytest.mark.parametrize("name", sorted(SEED_BODIES))
async def test_client_sends_seed_body_and_reads_it_back(stack: Stack, name: str) -> None:
    """The Python client stores each seed body over gRPC; GetEvent returns it unchanged."""
    body = SEED_BODIES[name]
    async with AsyncClient(stack.grpc_target, api_key=stack.api_key) as client:
        event_id = await client.generate_event(body["eventTypeKey"], key_value=body["keyValue"],
                                               params=body["params"])
        stored = await client.get_event(event_id)
    assert stored.params == body["params"]
    assert stored.event_type_key == body["eventTypeKey"] and stored.key_value == body["keyValue"]


async def test_client_translates_errors(stack: Stack) -> None:
    """gRPC status codes become the client's own exception classes."""
    async with AsyncClient(stack.grpc_target, api_key=stack.api_key) as client:
        with pytest.raises(InvalidArgumentError) as bad:
            await client.generate_event("bad?key", key_value="k")
        assert bad.value.violations and bad.value.violations[0][0] == "eventTypeKey"
        with pytest.raises(NotFoundError):
            await client.get_event(10**12)
        with pytest.raises(TooLargeError):
            await client.generate_event("big", key_value="k", params={"x": "a" * 30000})
    async with AsyncClient(stack.grpc_target, api_key="wrong") as client:
        with pytest.raises(AuthenticationError):
            await client.generate_event("t", key_value="k")


async def test_batch_answers_each_event_in_order(stack: Stack) -> None:
    """GenerateEvents stores the valid events and reports the violations of the others."""
    async with AsyncClient(stack.grpc_target, api_key=stack.api_key) as client:
        results = await client.generate_events([
            build_request("batch_ok", key_value="a"),
            build_request("batch?bad", key_value="b"),
            build_request("batch_ok", key_value="c", params={"n": 1}),
        ])
        assert [r.status for r in results] == ["ACCEPTED", "INVALID", "ACCEPTED"]
        assert results[1].violations[0][0] == "eventTypeKey" and results[1].event_id == 0
        stored = await client.get_event(results[2].event_id)
        assert stored.key_value == "c"


async def test_stream_acks_each_event_after_commit(stack: Stack) -> None:
    """StreamEvents acks every event in order; each acked id is already readable."""
    stub = events_pb2_grpc.EventServiceStub(stack.channel)

    async def requests():  # type: ignore[no-untyped-def]
        for i in range(20):
            yield events_pb2.StreamEventsRequest(
                client_ref=str(i), event=build_request("streamed", key_value=f"s{i}"))
        yield events_pb2.StreamEventsRequest(client_ref="bad", event=build_request("x|y", key_value="k"))

    refs = []
    async with AsyncClient(stack.grpc_target, api_key=stack.api_key) as client:
        async for ack in stub.StreamEvents(requests(), metadata=stack.meta()):
            refs.append(ack.client_ref)
            if ack.client_ref == "bad":
                assert ack.result.status == "INVALID"
                continue
            stored = await client.get_event(ack.result.event_id)
            assert stored.key_value == f"s{ack.client_ref}"
    assert refs == [str(i) for i in range(20)] + ["bad"]


async def test_stream_ends_invalid_argument_at_an_undecodable_message(stack: Stack) -> None:
    """A stream message that is not a StreamEventsRequest ends the call INVALID_ARGUMENT
    naming its index, after the acks of the messages before it (it was OK with no word
    about the rest: everything from the bad message on was dropped silently)."""
    path = "/eventflow.v1.EventService/StreamEvents"
    good = [events_pb2.StreamEventsRequest(
        client_ref=str(i), event=build_request("streamed_then_bad", key_value=f"b{i}")
    ).SerializeToString() for i in range(2)]
    call = stack.channel.stream_stream(path, request_serializer=None,
                                       response_deserializer=None)(metadata=stack.meta())
    acks = []
    # One message at a time, each after the ack of the one before: the server's answer to
    # the bad one is what the call ends with, never a write racing the server's end.
    for raw in [*good, b"\xff\xff", good[0]]:
        await call.write(raw)
        try:
            reply = await call.read()
        except grpc.aio.AioRpcError:
            break  # the call's status, read below
        assert reply is not grpc.aio.EOF
        acks.append(events_pb2.StreamEventsResponse.FromString(reply))
    assert await call.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "requests[2]" in await call.details()
    assert [a.client_ref for a in acks] == ["0", "1"]
    assert all(a.result.status == "ACCEPTED" for a in acks), acks
    async with AsyncClient(stack.grpc_target, api_key=stack.api_key) as client:
        for ack in acks:
            assert (await client.get_event(ack.result.event_id)).key_value == f"b{ack.client_ref}"


async def test_message_id_repeat_returns_original_event(stack: Stack) -> None:
    """A repeated message id answers success with the first event's id and stores nothing."""
    async with AsyncClient(stack.grpc_target, api_key=stack.api_key) as client:
        first = await client.generate_event("dedup", key_value="k", message_id="m-123")
        before = await stack.count_events()
        again = await client.generate_event("dedup", key_value="k", message_id="m-123")
        assert again == first
        assert await stack.count_events() == before
        results = await client.generate_events([
            build_request("dedup", key_value="k", message_id="m-new"),
            build_request("dedup", key_value="k", message_id="m-new")])
        assert results[0].event_id == results[1].event_id and results[1].duplicate
    # Another account may use the same message id for its own event.
    async with AsyncClient(stack.grpc_target, api_key=stack.other_key) as other:
        assert await other.generate_event("dedup", key_value="k", message_id="m-123") != first


async def test_rate_limit_answers_resource_exhausted_and_429(backends: Backends,
                                                             tmp_path: Path) -> None:
    """Past EVENTFLOW_RATE_LIMIT per second an account gets RESOURCE_EXHAUSTED / 429."""
    s = await start_stack(backends, tmp_path, worker=False, rate_limit=3,
                          redis_prefix=backends.prefix + "rl:")
    try:
        body = {"eventTypeKey": "limited", "keyValue": "k", "params": []}
        codes = [(await s.post_event(body)).status_code for _ in range(6)]
        assert codes[:3] == [200, 200, 200] and 429 in codes[3:]
        async with AsyncClient(s.grpc_target, api_key=s.api_key) as client:
            with pytest.raises(RateLimitedError):
                for _ in range(5):
                    await client.generate_event("limited", key_value="k")
        await asyncio.sleep(1.1)
        assert (await s.post_event(body)).status_code == 200
    finally:
        await s.stop()


async def test_sync_client_round_trip(stack: Stack) -> None:
    """The blocking Client stores and reads an event (run in a thread beside the loop)."""
    from eventflow_client import Client

    def use() -> tuple[int, str]:
        with Client(stack.grpc_target, api_key=stack.api_key) as client:
            event_id = client.generate_event("sync_client", key_value="sk", params={"a": [1, 2]})
            return event_id, client.get_event(event_id).key_value

    event_id, key = await asyncio.to_thread(use)
    assert event_id > 0 and key == "sk"


def test_exported_names_are_pinned() -> None:
    """The client's public names are deliberate."""
    import eventflow_client

    assert sorted(eventflow_client.__all__) == sorted(
        ["AsyncClient", "AuthenticationError", "Client", "EventResult", "EventflowError",
         "InvalidArgumentError", "NotFoundError", "RateLimitedError", "StoredEvent",
         "TooLargeError", "UnavailableError"])


def test_every_status_code_maps_to_a_client_error() -> None:
    """translate() gives an EventflowError subclass for every gRPC status."""
    from eventflow_client.errors import EventflowError, translate

    class Fake(grpc.RpcError):
        def __init__(self, code: grpc.StatusCode) -> None:
            self._code = code

        def code(self) -> grpc.StatusCode:
            return self._code

        def details(self) -> str:
            return "x"

        def trailing_metadata(self) -> tuple[()]:
            return ()

    for code in grpc.StatusCode:
        assert isinstance(translate(Fake(code)), EventflowError)
