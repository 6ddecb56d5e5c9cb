"""Each field rule of one event: the exact 400 / INVALID_ARGUMENT, and nothing stored."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from eventflow.v1 import events_pb2, events_pb2_grpc
from server.codec.proto import input_to_request
from server.ingest.model import MISSING, EventInput
from tests.support import Stack, grpc_violations

LONG_NAME = "x" * 101
CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("type key missing", {"keyValue": "k", "params": []}, "eventTypeKey", "is required"),
    ("type key blank", {"eventTypeKey": "  ", "keyValue": "k"}, "eventTypeKey", "is required"),
    ("type key too long", {"eventTypeKey": "t" * 101, "keyValue": "k"}, "eventTypeKey",
     "101 characters long; the limit is 100"),
    ("type key forbidden char", {"eventTypeKey": "cart?", "keyValue": "k"}, "eventTypeKey",
     "forbidden character(s) ?"),
    ("type key curly quote", {"eventTypeKey": "cart’s", "keyValue": "k"}, "eventTypeKey",
     "forbidden character(s) ’"),
    ("key value too long", {"eventTypeKey": "t", "keyValue": "k" * 301}, "keyValue",
     "301 characters long; the limit is 300"),
    ("key value forbidden char", {"eventTypeKey": "t", "keyValue": "a<b>"}, "keyValue",
     "forbidden character(s) < >"),
    ("no key and no identifier", {"eventTypeKey": "t", "params": [{"name": "x", "value": 1}]},
     "keyValue", "is required when params carry none of"),
    ("only blank external id", {"eventTypeKey": "t",
                                "params": [{"name": "externalCustomerId", "value": " null "}]},
     "keyValue", "is required when params carry none of"),
    ("param without name", {"eventTypeKey": "t", "keyValue": "k", "params": [{"value": 1}]},
     "params[0].name", "is required"),
    ("param without value", {"eventTypeKey": "t", "keyValue": "k", "params": [{"name": "a"}]},
     "params[0].value", "is required"),
    ("param name too long", {"eventTypeKey": "t", "keyValue": "k",
                             "params": [{"name": LONG_NAME, "value": 1}]},
     "params[0].name", "the limit is 100"),
    ("duplicate param names", {"eventTypeKey": "t", "keyValue": "k",
                               "params": [{"name": "a", "value": 1}, {"name": "a", "value": 2}]},
     "params[1].name", "duplicates the name 'a' of params[0]"),
    ("nested too deep", {"eventTypeKey": "t", "keyValue": "k",
                         "params": [{"name": "deep", "value": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}]},
     "params[0].value", "nested deeper than 24 levels"),
]
TYPE_CASES: list[tuple[str, Any, str, str]] = [
    ("body not an object", [1, 2], "body", "must be a JSON object"),
    ("type key a number", {"eventTypeKey": 5, "keyValue": "k"}, "eventTypeKey", "must be a string"),
    ("params an object", {"eventTypeKey": "t", "keyValue": "k", "params": {"a": 1}}, "params",
     "must be an array"),
    ("param entry a string", {"eventTypeKey": "t", "keyValue": "k", "params": ["a"]}, "params[0]",
     "must be an object"),
    ("param name a number", {"eventTypeKey": "t", "keyValue": "k",
                             "params": [{"name": 3, "value": 1}]}, "params[0].name",
     "must be a string"),
]


@pytest.mark.parametrize("case", CASES + TYPE_CASES, ids=[c[0] for c in CASES + TYPE_CASES])
async def test_http_rule_answers_400_and_stores_nothing(stack: Stack, case: Any) -> None:
    """A violating body gets 400 naming the field and the reason; the database is unchanged."""
    _name, body, field, message = case
    before = (await stack.count_events(), await stack.count_event_types())
    r = await stack.post_event(body)
    assert r.status_code == 400, r.text
    doc = r.json()
    assert doc["error"]
    assert any(v["field"] == field and message in v["message"] for v in doc["violations"]), doc
    assert (await stack.count_events(), await stack.count_event_types()) == before




@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
async def test_grpc_rule_answers_invalid_argument_and_stores_nothing(stack: Stack, case: Any
                                                                     ) -> None:
    """The same rules over gRPC: INVALID_ARGUMENT with BadRequest field violations."""
    _name, body, field, message = case
    # Built directly (not through the JSON shape check) so the server's own rules answer.
    request = input_to_request(EventInput(
        body.get("eventTypeKey", ""), body.get("keyValue", ""),
        [(p.get("name", ""), p.get("value", MISSING)) for p in body.get("params", [])]))
    before = await stack.count_events()
    stub = events_pb2_grpc.EventServiceStub(stack.channel)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.GenerateEvent(request, metadata=stack.meta())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert any(f == field and message in m for f, m in grpc_violations(info.value))
    assert await stack.count_events() == before


async def test_all_violations_reported_together(stack: Stack) -> None:
    """Several wrong fields are all listed in one answer."""
    body = {"eventTypeKey": "bad|key", "keyValue": "k" * 301,
            "params": [{"name": "", "value": 1}, {"name": "a"}]}
    r = await stack.post_event(body)
    fields = {v["field"] for v in r.json()["violations"]}
    assert fields == {"eventTypeKey", "keyValue", "params[0].name", "params[1].value"}


async def test_grpc_param_without_value_message(stack: Stack) -> None:
    """An EventParam whose value is unset is a missing value, not null."""
    request = input_to_request(EventInput("t", "k", [("a", MISSING)]))
    stub = events_pb2_grpc.EventServiceStub(stack.channel)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.GenerateEvent(request, metadata=stack.meta())
    assert ("params[0].value", "is required: every param needs a value (null is allowed)") in \
        grpc_violations(info.value)


@pytest.mark.parametrize("headers,content,status,needle", [
    ({"Content-Type": "text/plain"}, b'{"eventTypeKey":"t","keyValue":"k"}', 415, "Content-Type"),
    ({}, b'{"eventTypeKey":"t","keyValue":"k"}', 415, "Content-Type"),
    ({"Content-Type": "application/json"}, b'{"eventTypeKey": "t", ', 400, "not valid JSON"),
    ({"Content-Type": "application/json"}, b'{"eventTypeKey":"t\xff\xfe","keyValue":"k"}', 400,
     "not valid JSON"),
    ({"Content-Type": "application/json"}, b'{"eventTypeKey":"\\ud800","keyValue":"k"}', 400,
     "not valid JSON"),
    ({"Content-Type": "application/json"}, b"", 400, "not valid JSON"),
])
async def test_malformed_requests_are_4xx_and_store_nothing(stack: Stack, headers: dict[str, str],
                                                            content: bytes, status: int,
                                                            needle: str) -> None:
    """Wrong content type, broken JSON and invalid UTF-8 are refused clearly."""
    before = await stack.count_events()
    r = await stack.http.post("/api/v2/event", content=content,
                              headers={**stack.auth(), **headers})
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]
    assert await stack.count_events() == before


async def test_body_over_limit_is_413(stack: Stack) -> None:
    """A body over EVENTFLOW_MAX_EVENT_BYTES (20 KB) is 413 and nothing is stored."""
    before = await stack.count_events()
    body = {"eventTypeKey": "big", "keyValue": "k", "params": [{"name": "x", "value": "a" * 21000}]}
    r = await stack.post_event(body)
    assert r.status_code == 413, r.text
    assert "limit" in r.json()["error"]
    assert await stack.count_events() == before


async def test_grpc_event_over_limit_is_resource_exhausted(stack: Stack) -> None:
    """Over gRPC an over-size event is RESOURCE_EXHAUSTED and nothing is stored."""
    request = input_to_request(EventInput("big", "k", [("x", "a" * 21000)]))
    stub = events_pb2_grpc.EventServiceStub(stack.channel)
    before = await stack.count_events()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.GenerateEvent(request, metadata=stack.meta())
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert await stack.count_events() == before


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic bm9wZTpub3Bl"},
                                     {"Authorization": "Basic !!!"}, {"x-api-key": "wrong"}])
async def test_missing_or_wrong_key_is_401(stack: Stack, headers: dict[str, str]) -> None:
    """No key, an unknown key or a broken header is 401 with a hint, and stores nothing."""
    before = await stack.count_events()
    r = await stack.http.post("/api/v2/event", json={"eventTypeKey": "t", "keyValue": "k"},
                              headers=headers)
    assert r.status_code == 401, r.text
    assert r.json()["error"]
    assert await stack.count_events() == before


async def test_grpc_without_key_is_unauthenticated(stack: Stack) -> None:
    """A gRPC call without credentials is UNAUTHENTICATED."""
    stub = events_pb2_grpc.EventServiceStub(stack.channel)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.GenerateEvent(events_pb2.GenerateEventRequest(event_type_key="t", key_value="k"))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_unknown_route_and_method_are_json_errors(stack: Stack) -> None:
    """Unknown paths answer 404 and wrong methods 405, both as JSON errors."""
    r = await stack.http.get("/api/v9/nothing")
    assert r.status_code == 404 and "error" in r.json()
    r = await stack.http.get("/api/v2/event", headers=stack.auth())
    assert r.status_code == 405 and "error" in r.json()


async def test_grpc_message_too_deep_to_decode_is_invalid_argument(stack: Stack) -> None:
    """A request nested past protobuf's decoding limit is INVALID_ARGUMENT, never UNKNOWN."""
    request = events_pb2.GenerateEventRequest(event_type_key="t", key_value="k")
    value = request.params.add(name="deep").value
    for _ in range(60):
        value = value.list_value.values.add()
    value.number_value = 1
    stub = events_pb2_grpc.EventServiceStub(stack.channel)
    before = await stack.count_events()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.GenerateEvent(request, metadata=stack.meta())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "could not be decoded" in (info.value.details() or "")
    assert await stack.count_events() == before


@pytest.mark.parametrize("depth", [25, 60, 99, 500])
async def test_http_deep_values_are_400(stack: Stack, depth: int) -> None:
    """Lists or objects nested past 24 levels get 400 from the gateway, at any depth."""
    for opener, closer in (("[", "]"), ('{"a":', "}")):
        body = ('{"eventTypeKey":"t","keyValue":"k","params":[{"name":"d","value":'
                + opener * depth + "1" + closer * depth + "}]}")
        r = await stack.http.post("/api/v2/event", content=body,
                                  headers={**stack.auth(), "Content-Type": "application/json"})
        assert r.status_code == 400, r.text
        assert r.json()["violations"][0]["field"] == "params[0].value"
