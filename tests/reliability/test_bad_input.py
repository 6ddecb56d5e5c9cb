"""Issue 12 finding 2: each bad input that was a 500 / INTERNAL is a 400 / 401 /
INVALID_ARGUMENT naming the field, and changes nothing (docs/reliability.md)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2
from sqlalchemy import text

from eventflow.v1 import (
    contacts_pb2,
    contacts_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    templates_pb2,
    templates_pb2_grpc,
    workflows_pb2,
    workflows_pb2_grpc,
)
from tests.support import Stack, grpc_violations

JSON = {"Content-Type": "application/json"}
DEEP = "nested deeper than 32 levels"
MAX_BODY_DEPTH = 32  # server.codec.depth


def objects(levels: int) -> str:
    """JSON text of ``levels`` objects, one inside the other."""
    return '{"a":' * levels + "1" + "}" * levels


def arrays(levels: int) -> str:
    """JSON text of ``levels`` arrays, one inside the other."""
    return "[" * levels + "1" + "]" * levels


FLOW = ('{"name":"x","trigger":{"eventTypeKey":"a"},"start":"e",'
        '"blocks":[{"id":"e","type":"end"}]}')
# Route, body around the deep value (%s), the path of the violation's field.
DEEP_BODIES = [
    ("/api/v1/contact", '{"firstName":"x","fields":[{"id":1,"value":%s}]}', "fields[0].value"),
    ("/api/v1/contacts", '{"contacts":[{"firstName":%s}]}', "contacts[0].firstName"),
    ("/api/v1/fields", '{"name":"x","type":"text","allowedValues":%s}', "allowedValues"),
    ("/api/v1/workflows", '{"name":"x","trigger":{"eventTypeKey":%s}}', "trigger.eventTypeKey"),
    ("/api/v1/workflows/simulate", '{"definition":' + FLOW + ',"events":[{"eventTypeKey":"a",'
     '"keyValue":"k","params":[{"name":"p","value":%s}]}]}', "events[0].params[0].value"),
    ("/api/v1/messages/preview", '{"template":"x","event":{"params":[{"name":"p","value":%s}]}}',
     "event.params[0].value"),
]


async def _rows(stack: Stack, table: str) -> int:
    async with stack.engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def _counts(stack: Stack) -> tuple[int, ...]:
    return tuple([await _rows(stack, t) for t in ("events", "contacts", "workflows",
                                                  "contact_fields")])


@pytest.mark.parametrize("query,field", [("since=0001-01-01T00:00:00%2B01:00", "since"),
                                         ("until=9999-12-31T23:59:59-01:00", "until")])
async def test_list_events_times_past_the_timestamp_range_are_400(
        stack: Stack, query: str, field: str) -> None:
    """A time that leaves years 1-9999 once in UTC is a 400 naming since/until (was a 500)."""
    r = await stack.http.get(f"/api/v1/events?{query}", headers=stack.auth())
    assert r.status_code == 400, r.text
    (violation,) = r.json()["violations"]
    assert violation["field"] == field and "0001-01-01T00:00:00Z" in violation["message"]
    edge = await stack.http.get("/api/v1/events?since=0001-01-01T00:00:00%2B00:00",
                                headers=stack.auth())
    assert edge.status_code == 200, edge.text


@pytest.mark.parametrize("levels", [300, 1000])
@pytest.mark.parametrize("route,body,field", DEEP_BODIES, ids=[d[0] for d in DEEP_BODIES])
async def test_deeply_nested_bodies_are_400_naming_the_path(
        stack: Stack, route: str, body: str, field: str, levels: int) -> None:
    """Objects 300 deep or arrays 1,000 deep in any JSON body: 400 naming where (was a 500)."""
    before = await _counts(stack)
    deep = objects(levels) if levels == 300 else arrays(levels)
    r = await stack.http.post(route, content=body % deep, headers={**stack.auth(), **JSON})
    assert r.status_code == 400, r.text
    (violation,) = r.json()["violations"]
    assert violation["field"].startswith(field) and DEEP in violation["message"]
    assert await _counts(stack) == before


async def test_the_body_depth_rule_refuses_only_past_32_levels(stack: Stack) -> None:
    """A preview body of exactly 32 levels renders; one level more is the 400."""
    body = '{"template":"ok","context":%s}'
    within = objects(MAX_BODY_DEPTH - 1)
    r = await stack.http.post("/api/v1/messages/preview", content=body % within,
                              headers={**stack.auth(), **JSON})
    assert r.status_code == 200 and r.json() == {"rendered": "ok"}, r.text
    r = await stack.http.post("/api/v1/messages/preview", content=body % objects(MAX_BODY_DEPTH),
                              headers={**stack.auth(), **JSON})
    assert r.status_code == 400 and DEEP in r.text


async def test_arrays_past_the_parsers_own_limit_are_400(stack: Stack) -> None:
    """Arrays 5,000 deep (past orjson's 1,024) name the body, not "invalid JSON"."""
    r = await stack.http.post("/api/v1/contact", content=arrays(5000),
                              headers={**stack.auth(), **JSON})
    assert r.status_code == 400
    assert r.json()["violations"] == [{"field": "body", "message":
                                       "is nested deeper than 32 levels of objects and arrays"}]


@pytest.mark.parametrize("headers", [
    {"Authorization": b"Basic \xff\xfe"}, {"Authorization": "Basic ключ".encode()},
    {"x-api-key": "ключ".encode()}, {"x-api-key": b"\xe9t\xe9"},
    {"x-api-key": b"tab\tinside"}], ids=["basic-ff-fe", "basic-cyrillic", "key-cyrillic",
                                         "key-latin1", "key-tab"])
@pytest.mark.parametrize("method,route", [("GET", "/api/v1/event-types"),
                                          ("POST", "/api/v2/event"),
                                          ("POST", "/api/v1/contact")])
async def test_non_ascii_credentials_are_401(stack: Stack, headers: dict[str, bytes],
                                             method: str, route: str) -> None:
    """Credentials that are not printable ASCII are no key: 401 (was a 500)."""
    before = await _counts(stack)
    r = await stack.http.request(method, route, headers={**headers, **JSON},
                                 content=b'{"eventTypeKey":"t","keyValue":"k"}')
    assert r.status_code == 401, r.text
    assert "printable ASCII" in r.json()["error"]
    assert r.headers["www-authenticate"] == 'Basic realm="eventflow"'
    assert await _counts(stack) == before


@pytest.mark.parametrize("blocks", ["1", "true", "1.5", "-3", "null"])
async def test_workflow_blocks_that_are_not_a_list_are_400(stack: Stack, blocks: str) -> None:
    """``"blocks": 1`` (or true, a float) is a 400 naming blocks (was INTERNAL, 502)."""
    made = await stack.http.post("/api/v1/workflows", content=FLOW,
                                 headers={**stack.auth(), **JSON})
    assert made.status_code == 200, made.text
    before = await _counts(stack)
    body = '{"name":"x","trigger":{"eventTypeKey":"a"},"start":"a","blocks":' + blocks + "}"
    for method, route in (("POST", "/api/v1/workflows"),
                          ("PUT", f"/api/v1/workflows/{made.json()['id']}")):
        r = await stack.http.request(method, route, content=body,
                                     headers={**stack.auth(), **JSON})
        assert r.status_code == 400, r.text
        assert [v["field"] for v in r.json()["violations"]] == ["blocks"]
    r = await stack.http.post("/api/v1/workflows/simulate",
                              content='{"definition":' + body + ',"events":[]}',
                              headers={**stack.auth(), **JSON})
    assert r.status_code == 400 and [v["field"] for v in r.json()["violations"]] == ["blocks"]
    assert await _counts(stack) == before


async def test_simulated_contact_with_a_text_id_is_400(stack: Stack) -> None:
    """A simulate with ``"contacts": [{"id": "x"}]`` is a 400 naming contacts[0].id."""
    body = ('{"definition":' + FLOW + ',"events":[{"eventTypeKey":"a","keyValue":"k"}],'
            '"contacts":[{"id":"x"}]}')
    r = await stack.http.post("/api/v1/workflows/simulate", content=body,
                              headers={**stack.auth(), **JSON})
    assert r.status_code == 400, r.text
    assert [v["field"] for v in r.json()["violations"]] == ["contacts[0].id"]


BAD_TIMES = [(2**62, 0), (-(2**62), 0), (10, -5), (10, 10**9)]


def _ts(seconds: int, nanos: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def _field_named(err: grpc.aio.AioRpcError, field: str) -> bool:
    return err.code() == grpc.StatusCode.INVALID_ARGUMENT and \
        [f for f, _ in grpc_violations(err)] == [field]


@pytest.mark.parametrize("seconds,nanos", BAD_TIMES)
async def test_grpc_timestamps_out_of_range_are_invalid_argument(
        stack: Stack, seconds: int, nanos: int) -> None:
    """Timestamps past their range in ListEvents, GenerateEvent and GenerateEvents are
    INVALID_ARGUMENT (or an INVALID result) naming the field (were INTERNAL)."""
    stub = events_pb2_grpc.EventServiceStub(stack.channel)
    before = await _counts(stack)
    for field in ("since", "until"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListEvents(events_pb2.ListEventsRequest(**{field: _ts(seconds, nanos)}),
                                  metadata=stack.meta())
        assert _field_named(caught.value, field), caught.value.details()
    event = events_pb2.GenerateEventRequest(event_type_key="t", key_value="k",
                                            occurred=_ts(seconds, nanos))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GenerateEvent(event, metadata=stack.meta())
    assert _field_named(caught.value, "occurred"), caught.value.details()
    good = events_pb2.GenerateEventRequest(event_type_key="t", key_value="k")
    reply = await stub.GenerateEvents(events_pb2.GenerateEventsRequest(events=[event, good]),
                                      metadata=stack.meta())
    assert reply.results[0].status == "INVALID"
    assert [v.field for v in reply.results[0].violations] == ["occurred"]
    assert reply.results[1].status == "ACCEPTED"
    assert await _counts(stack) == (before[0] + 1, *before[1:])


async def test_grpc_json_text_fields_follow_the_body_rules(stack: Stack) -> None:
    """JSON text in gRPC fields (definitions, simulations, preview data) nested too deep
    is INVALID_ARGUMENT (or a preview's Wrong Format) naming it, never INTERNAL."""
    workflows = workflows_pb2_grpc.WorkflowServiceStub(stack.channel)
    calls: list[tuple[Any, str]] = [
        (workflows.CreateWorkflow(workflows_pb2.CreateWorkflowRequest(
            definition_json=objects(300)), metadata=stack.meta()), "definition"),
        (workflows.UpdateWorkflow(workflows_pb2.UpdateWorkflowRequest(
            id=1, definition_json=arrays(1000)), metadata=stack.meta()), "definition"),
        (workflows.SimulateWorkflow(workflows_pb2.SimulateWorkflowRequest(
            definition_json=FLOW, events_json=arrays(1000)), metadata=stack.meta()), "events"),
        (workflows.SimulateWorkflow(workflows_pb2.SimulateWorkflowRequest(
            definition_json=FLOW, events_json="[]", contacts_json=objects(300)),
            metadata=stack.meta()), "contacts"),
    ]
    for call, field in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
        assert grpc_violations(caught.value)[0][0].startswith(field)
    templates = templates_pb2_grpc.TemplateServiceStub(stack.channel)
    for data in (arrays(900), arrays(5000)):
        reply = await templates.RenderTemplate(templates_pb2.RenderTemplateRequest(
            template="x", event_json=data), metadata=stack.meta())
        assert reply.error.kind == "wrong_format" and DEEP in reply.error.message



async def test_a_negative_search_limit_is_invalid_argument(stack: Stack) -> None:
    """SearchContacts with limit -1 names the limit (PostgreSQL refused the LIMIT: INTERNAL;
    found by the sweep)."""
    stub = contacts_pb2_grpc.ContactServiceStub(stack.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SearchContacts(contacts_pb2.SearchContactsRequest(limit=-1),
                                  metadata=stack.meta())
    assert _field_named(caught.value, "limit"), caught.value.details()
