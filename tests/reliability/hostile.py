"""Account A's hostile calls made from processes of their own, as another client's would be.

Sending a 22 MB message costs its sender tens of milliseconds of CPU. Made from the test's
own event loop, that cost lands on the probe of account B beside it, and the figure measures
the test's client rather than the deployment. Here each hostile caller is a process of a
``ProcessPoolExecutor`` (spawned, never forked from a process running gRPC) that builds
the bodies itself: the test's loop only sends a body's name and gets back what the call
ended in.

Every function returns ``(proper, what)``: whether the call ended in its proper refusal,
and a short description of the answer.
"""

from __future__ import annotations

import functools
import os
import time

import grpc
import httpx
import orjson
from google.protobuf import struct_pb2

from eventflow.v1 import events_pb2
from server.codec.wirejson import varint
from tests.support import grpc_reason

DEADLINE = 30.0
HUGE_PARAMS = 2_000_000


@functools.cache
def huge_event() -> bytes:
    """A GenerateEventRequest of 2,000,000 params (22 MB), made as bytes: building the
    message in Python would take longer than the scenario."""
    param = events_pb2.EventParam(name="abc", value=struct_pb2.Value(bool_value=True))
    one = param.SerializeToString()
    head = events_pb2.GenerateEventRequest(event_type_key="flood", key_value="a")
    return head.SerializeToString() + (b"\x1a" + bytes([len(one)]) + one) * HUGE_PARAMS


@functools.cache
def huge_batch() -> bytes:
    """A GenerateEventsRequest holding one small event and the 22 MB one."""
    small = events_pb2.GenerateEventRequest(event_type_key="flood", key_value="b")
    parts = [small.SerializeToString(), huge_event()]
    return b"".join(b"\x0a" + varint(len(p)) + p for p in parts)


@functools.cache
def bulk_body() -> bytes:
    """28.6 MB of bulk contacts, the issue's body (the limit is 4 MiB)."""
    contact = {"channels": [{"type": "email", "value": "flood@example.com"}],
               "firstName": "Ann", "lastName": "Smith", "externalCustomerId": "x" * 20}
    return orjson.dumps({"contacts": [contact] * 203_000})


BODIES = {"huge_event": huge_event, "huge_batch": huge_batch, "bulk": bulk_body}


def warm() -> None:
    """A pool process's initializer: the bodies built before the first timed call, and
    the lowest CPU priority. A's sending costs would be paid on A's own machine; here they
    share the deployment's two cores, and at B's priority the scenario would measure how
    the kernel splits them between the two clients rather than what the deployment does
    with A's calls (what A's bytes cost the deployment is still paid at full priority)."""
    os.nice(19)
    for body in BODIES.values():
        body()


def ready(seconds: float) -> None:
    """Held by each pool process at once, so that every one of them has started."""
    time.sleep(seconds)


@functools.cache
def _channel(target: str) -> grpc.Channel:
    return grpc.insecure_channel(target, options=[
        ("grpc.max_send_message_length", 64 * 1024 * 1024)])


def grpc_raw(target: str, api_key: str, method: str, body: str, names: str = ""
             ) -> tuple[bool, str]:
    """The body ``BODIES[body]`` sent to EventService/``method``: proper when it is
    RESOURCE_EXHAUSTED without a hint to retry: gRPC's own refusal of a message over the
    server's limit ("Received message larger than max", no reason), or eventflow's, reason
    TOO_LARGE, with details containing ``names``."""
    call = _channel(target).unary_unary(f"/eventflow.v1.EventService/{method}")
    try:
        call(BODIES[body](), timeout=DEADLINE, metadata=(("x-api-key", api_key),))
    except grpc.RpcError as error:
        assert isinstance(error, grpc.Call)  # a finished call's error carries its status
        details, code, reason = error.details() or "", error.code(), grpc_reason(error)
        ours = reason == "TOO_LARGE" and names in details
        grpcs = reason == "" and "larger than max" in details
        return (code == grpc.StatusCode.RESOURCE_EXHAUSTED and (ours or grpcs),
                f"{code} {details[:120]}")
    return False, "OK"


@functools.cache
def _http(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=DEADLINE)


def http_post(base_url: str, path: str, headers: dict[str, str], body: str,
              status: int) -> tuple[bool, str]:
    """The body ``BODIES[body]`` posted to ``path``: proper when the answer has ``status``."""
    r = _http(base_url).post(path, content=BODIES[body](), headers=headers)
    return r.status_code == status, f"{r.status_code} {r.text[:80]}"


def grpc_events(target: str, api_key: str, callers: int) -> tuple[bool, str]:
    """``callers`` GenerateEvents of 100 small events each, all in flight at once: proper
    when every result is ACCEPTED or RATE_LIMITED (far past the rate limit, most are)."""
    batch = events_pb2.GenerateEventsRequest(events=[
        events_pb2.GenerateEventRequest(event_type_key="flood", key_value=f"k{i}")
        for i in range(100)])
    call = _channel(target).unary_unary(
        "/eventflow.v1.EventService/GenerateEvents",
        request_serializer=events_pb2.GenerateEventsRequest.SerializeToString,
        response_deserializer=events_pb2.GenerateEventsResponse.FromString)
    pending = [call.future(batch, timeout=DEADLINE, metadata=(("x-api-key", api_key),))
               for _ in range(callers)]
    statuses: set[str] = set()
    for f in pending:
        statuses |= {r.status for r in f.result().results}
    return statuses <= {"ACCEPTED", "RATE_LIMITED"}, str(sorted(statuses))
