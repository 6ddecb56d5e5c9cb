"""Issue 12 finding 2, the sweep: random and malformed requests to every gateway route and
every RPC never get a 5xx, INTERNAL or UNKNOWN (docs/reliability.md).

Routes and methods are read from the running app and from the services' descriptors, so
a route or RPC added later is swept without a change here. Hypothesis draws the inputs
with a fixed seed (``derandomize``) and a bounded number per route or method, against a
stack of its own (rate limit off, so events reach the codecs rather than the limiter).
"""

from __future__ import annotations

import importlib
import json
import re
import string
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import grpc
import httpx
import pytest
from google.protobuf import timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route

import eventflow.v1
from server.codec.values import build_value
from server.gateway.app import build_app
from tests.support import Backends, Stack, basic, private_backends, start_stack

EXAMPLES_PER_ROUTE = 20
EXAMPLES_PER_METHOD = 12
SWEEP = settings(max_examples=EXAMPLES_PER_ROUTE, derandomize=True, database=None,
                 deadline=None, suppress_health_check=list(HealthCheck))
SWEEP_RPC = settings(SWEEP, max_examples=EXAMPLES_PER_METHOD)
# Never an answer to a caller's input: a failure of the server itself.
BROKEN_CODES = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS,
                grpc.StatusCode.UNAVAILABLE}


@pytest.fixture(scope="module")
async def sweep(backends: Backends, tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[Stack]:
    own = private_backends(backends, tmp_path_factory.mktemp("sweep-db"))
    stack = await start_stack(own, tmp_path_factory.mktemp("sweep"), worker=False, rate_limit=0)
    try:
        yield stack
    finally:
        await stack.stop()
        own.close()


# --- HTTP ------------------------------------------------------------------------------

def _routes() -> list[tuple[str, str]]:
    """(method, path template) of every route of the gateway app."""
    from server.config import Settings

    app = build_app(Settings(grpc_addr="127.0.0.1:1"))
    found = {(method, route.path) for route in app.routes if isinstance(route, Route)
             for method in (route.methods or ()) if method != "HEAD"}
    return sorted(found)


ROUTES = _routes()
json_leaves = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
               | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40))
json_values = st.recursive(json_leaves, lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.text(max_size=12), children, max_size=4),
                           max_leaves=30)
# Members the routes read, so random bodies reach past "missing field" checks.
NAMES = ["eventTypeKey", "keyValue", "params", "name", "value", "events", "occurred",
         "messageId", "contacts", "firstName", "email", "sms", "fields", "id", "type",
         "template", "html", "subject", "text", "event", "context", "jsonParam", "definition",
         "blocks", "trigger", "start", "active", "orders", "externalOrderId", "groups",
         "emails", "recipients", "channels", "status", "allowedValues", "dedupeOn"]
shaped = st.dictionaries(st.sampled_from(NAMES), json_values, max_size=6)


def _dumps(doc: Any) -> bytes:
    # The standard encoder: orjson refuses integers past 64 bits, which callers do send.
    return json.dumps(doc, ensure_ascii=False).encode()




def _nested(levels: int, kind: str) -> str:
    return '{"a":' * levels + "1" + "}" * levels if kind == "o" else "[" * levels + "]" * levels


# A member holding a value nested far past any limit (finding 2: 300 objects, 1,000 arrays).
deep_members = st.builds(lambda name, levels, kind: f'{{"{name}":{_nested(levels, kind)}}}'
                         .encode(), st.sampled_from(NAMES), st.integers(30, 1100),
                         st.sampled_from("ol"))
bodies = st.one_of(
    shaped.map(_dumps), json_values.map(_dumps), st.lists(shaped, max_size=3).map(_dumps),
    deep_members, st.binary(max_size=200),
    st.sampled_from([b"", b"{", b'{"eventTypeKey":"\\ud800"}', b"\xff\xfe{}", b"null",
                     b"1e999", b'{"blocks":1}', b'{"blocks":true,"name":"x"}',
                     b'{"definition":{"blocks":1.5},"events":[],"contacts":[{"id":"x"}]}']))
queries = st.dictionaries(
    st.sampled_from(["pageSize", "pageToken", "since", "until", "eventTypeKey", "keyValue",
                     "maxrows", "startindex", "limit", "email", "sms", "externalCustomerId",
                     "contactId", "workflowId", "runId", "beforeId", "status", "erase", "ids",
                     "next", "q"]),
    st.one_of(st.text(max_size=30), st.integers(-(2**70), 2**70).map(str),
              st.sampled_from(["²", "١٢", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
                               "2026-13-45", "true", ""])),
    max_size=4)
path_params = st.one_of(st.integers(-5, 2**70).map(str), st.text(min_size=1, max_size=20),
                        st.sampled_from(["²", "0", "%00", "..", "a/b"]))
content_types = st.sampled_from(["application/json", "application/json; charset=utf-8",
                                 "application/x-www-form-urlencoded", "text/plain", ""])


def _fill(template: str, values: list[str]) -> str:
    parts = iter(values)
    return re.sub(r"\{[^}]+\}", lambda _m: quote(next(parts), safe=""), template)


async def _console_login(client: httpx.AsyncClient, key: str) -> None:
    """Sign in to the console so its pages are swept past the login redirect."""
    page = await client.get("/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text)
    if token is not None:
        await client.post("/login", data={"api_key": key, "login_token": token.group(1)})


@pytest.fixture(scope="module")
async def http_client(sweep: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sweep.http_url, timeout=60) as client:
        await _console_login(client, sweep.api_key)
        yield client


@pytest.mark.parametrize("method,path", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
@SWEEP
@given(data=st.data())
async def test_random_requests_to_every_route_get_no_5xx(
        sweep: Stack, http_client: httpx.AsyncClient, method: str, path: str,
        data: st.DataObject) -> None:
    """Random ids, queries, content types, credentials and JSON (or not) bodies: < 500."""
    names = re.findall(r"\{[^}]+\}", path)
    url = _fill(path, [data.draw(path_params) for _ in names])
    headers: dict[str, str | bytes] = {"Content-Type": data.draw(content_types)}
    auth = data.draw(st.sampled_from(["key", "key", "key", "none", "bad", "bytes", "long"]))
    if auth == "key":
        headers["Authorization"] = basic(sweep.api_key)
    elif auth == "bad":
        # Any key a client library lets through (no control characters, no outer spaces).
        headers["x-api-key"] = data.draw(st.text(alphabet=string.printable.strip(),
                                                 min_size=1, max_size=40))
    elif auth == "bytes":  # not ASCII: b"Basic \xff\xfe", a Cyrillic key...
        visible = st.integers(0x21, 0x7E) | st.integers(0x80, 0xFF)
        headers[data.draw(st.sampled_from(["Authorization", "x-api-key"]))] = data.draw(
            st.sampled_from([b"", b"Basic ", b"Bearer "])) + bytes(data.draw(
                st.lists(visible, min_size=1, max_size=20)))
    elif auth == "long":
        headers["x-api-key"] = "k" * data.draw(st.integers(4000, 15000))
    content = data.draw(bodies) if method in ("POST", "PUT", "DELETE") else None
    r = await http_client.request(method, url, params=data.draw(queries), content=content,
                                  headers=headers)
    assert r.status_code < 500, (method, url, content, r.status_code, r.text[:300])


# --- gRPC ------------------------------------------------------------------------------

def _methods() -> list[MethodDescriptor]:
    """Every method of every service in ``proto/eventflow/v1`` (its generated modules)."""
    found = []
    for module in Path(eventflow.v1.__file__).parent.glob("*_pb2.py"):
        file = importlib.import_module(f"eventflow.v1.{module.stem}").DESCRIPTOR
        for service in file.services_by_name.values():
            found += list(service.methods)
    return sorted(found, key=lambda m: m.full_name)


METHODS = _methods()
_SCALARS: dict[int, st.SearchStrategy[Any]] = {
    FieldDescriptor.TYPE_INT32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: st.integers(0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: st.integers(0, 2**64 - 1),
    FieldDescriptor.TYPE_BOOL: st.booleans(),
    FieldDescriptor.TYPE_FLOAT: st.floats(width=32),
    FieldDescriptor.TYPE_DOUBLE: st.floats(),
    FieldDescriptor.TYPE_STRING: st.one_of(
        st.text(max_size=40), st.sampled_from(["", " ", "a|b", "²", "{}", "[]", "null",
                                               '{"a":' * 50 + "1" + "}" * 50, "x" * 400])),
    FieldDescriptor.TYPE_BYTES: st.binary(max_size=40),
}
_TIMESTAMPS = st.builds(timestamp_pb2.Timestamp, seconds=st.one_of(
    st.integers(-(2**63), 2**63 - 1), st.integers(-62_135_596_800, 253_402_300_799)),
    nanos=st.integers(-(2**31), 2**31 - 1))


def _draw_into(msg: Message, data: st.DataObject, depth: int) -> None:
    """Random values for a random subset of ``msg``'s fields (messages ``depth`` deep)."""
    for field in msg.DESCRIPTOR.fields:
        if not data.draw(st.booleans()):
            continue
        repeated = field.is_repeated
        count = data.draw(st.integers(0, 3)) if repeated else 1
        for _ in range(count):
            _draw_field(msg, field, data, depth, repeated)


def _draw_field(msg: Message, field: FieldDescriptor, data: st.DataObject, depth: int,
                repeated: bool) -> None:
    if field.message_type is not None:
        kind = field.message_type.full_name
        if field.message_type.GetOptions().map_entry:
            key_field, value_field = field.message_type.fields
            key = data.draw(_SCALARS[key_field.type])
            target = getattr(msg, field.name)
            if value_field.message_type is None:
                target[key] = data.draw(_SCALARS[value_field.type])
            elif depth > 0:
                _draw_into(target[key], data, depth - 1)
            return
        if kind == "google.protobuf.Timestamp":
            value: Message = data.draw(_TIMESTAMPS)
        elif kind in ("google.protobuf.Value", "google.protobuf.Struct"):
            doc = data.draw(json_values if kind.endswith("Value")
                            else st.dictionaries(st.text(max_size=8), json_values, max_size=4))
            built = build_value(doc)
            value = built if kind.endswith("Value") else built.struct_value
        elif depth <= 0:
            return
        else:
            value = GetMessageClass(field.message_type)()
            _draw_into(value, data, depth - 1)
        if repeated:
            getattr(msg, field.name).add().CopyFrom(value)
        else:
            getattr(msg, field.name).CopyFrom(value)
        return
    if field.enum_type is not None:
        raw: Any = data.draw(st.one_of(st.sampled_from([v.number for v in field.enum_type.values]),
                                       st.integers(-5, 50)))
    else:
        raw = data.draw(_SCALARS[field.type])
    if repeated:
        getattr(msg, field.name).append(raw)
    else:
        setattr(msg, field.name, raw)


def _request_bytes(descriptor: Descriptor, data: st.DataObject) -> bytes:
    if data.draw(st.integers(0, 4)) == 0:  # malformed: arbitrary bytes
        return bytes(data.draw(st.binary(max_size=120)))
    msg = GetMessageClass(descriptor)()
    _draw_into(msg, data, depth=3)
    return bytes(msg.SerializeToString())


@pytest.fixture(scope="module")
async def channel(sweep: Stack) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(sweep.grpc_target) as ch:
        yield ch


@pytest.mark.parametrize("method", METHODS, ids=[m.full_name for m in METHODS])
@SWEEP_RPC
@given(data=st.data())
async def test_random_messages_to_every_rpc_get_no_internal(
        sweep: Stack, channel: grpc.aio.Channel, method: MethodDescriptor,
        data: st.DataObject) -> None:
    """Random (and malformed) messages to every RPC: never INTERNAL, UNKNOWN, UNAVAILABLE."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    meta = (("authorization", basic(sweep.api_key)),)
    requests = [_request_bytes(method.input_type, data)
                for _ in range(data.draw(st.integers(1, 3)) if method.client_streaming else 1)]
    code = grpc.StatusCode.OK
    try:
        if method.client_streaming:
            # One message at a time, each after the answer to the one before. Written
            # all at once, a write after the server ended the call (at an undecodable
            # message) fails in the client, which then reports its own INTERNAL
            # "Internal error from Core" in place of the server's INVALID_ARGUMENT.
            call = channel.stream_stream(path, request_serializer=None,
                                         response_deserializer=None)(metadata=meta, timeout=30)
            for raw in requests:
                await call.write(raw)
                if await call.read() is grpc.aio.EOF:
                    break
            else:
                await call.done_writing()
                while await call.read() is not grpc.aio.EOF:
                    pass
            code = await call.code()
        else:
            await channel.unary_unary(path, request_serializer=None,
                                      response_deserializer=None)(requests[0], metadata=meta,
                                                                   timeout=30)
    except grpc.aio.AioRpcError as err:
        code = err.code()
        assert code not in BROKEN_CODES, (path, requests, code, err.details())
    assert code not in BROKEN_CODES


def test_the_sweep_covers_every_route_and_method() -> None:
    """The sweep found the gateway's routes and the services' methods (not an empty list)."""
    assert ("POST", "/api/v2/event") in ROUTES and ("GET", "/api/v1/events/{event_id}") in ROUTES
    names = {m.full_name for m in METHODS}
    assert {"eventflow.v1.EventService.GenerateEvent", "eventflow.v1.EventService.StreamEvents",
            "eventflow.v1.WorkflowService.SimulateWorkflow"} <= names
