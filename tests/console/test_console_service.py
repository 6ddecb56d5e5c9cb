"""ConsoleService over a real gRPC server: the overview's counts, event type statistics and
param structure, a contact's events, an event's runs, a workflow's versions; per account."""

from __future__ import annotations

import asyncio
import json
import secrets

import grpc
import pytest

from eventflow.v1 import console_pb2, console_pb2_grpc, workflows_pb2, workflows_pb2_grpc
from server.stats.shapes import param_shapes
from tests.console.test_http import cart
from tests.support import Stack


def stub(stack: Stack) -> console_pb2_grpc.ConsoleServiceStub:
    return console_pb2_grpc.ConsoleServiceStub(stack.channel)


async def test_overview_counts_this_hour_per_type_and_account(stack: Stack) -> None:
    """New events land in the current hour's bucket of their type, for their account only."""
    type_key = f"ov_{secrets.token_hex(3)}"
    for _ in range(3):
        assert (await stack.post_event(cart("ov@x.example", type_key))).status_code == 200
    o = await stub(stack).GetOverview(console_pb2.GetOverviewRequest(), metadata=stack.meta())
    (mine,) = [t for t in o.types if t.event_type_key == type_key]
    assert len(mine.hourly) == 24 and mine.hourly[-1] == 3 and sum(mine.hourly) == 3
    assert mine.last_hour == 3 and mine.today == 3
    assert o.events_total >= 3
    other = await stub(stack).GetOverview(console_pb2.GetOverviewRequest(),
                                          metadata=stack.meta(stack.other_key))
    assert type_key not in {t.event_type_key for t in other.types}


async def test_event_type_stats_and_structure(stack: Stack) -> None:
    """First and last seen, the count, create_contacts, and the params' paths with types."""
    type_key = f"st_{secrets.token_hex(3)}"
    await stack.post_event(cart("a@x.example", type_key))
    await stack.post_event({"eventTypeKey": type_key, "keyValue": "b@x.example",
                            "params": [{"name": "email", "value": 5}]})
    listed = await stub(stack).ListEventTypeStats(console_pb2.ListEventTypeStatsRequest(),
                                                  metadata=stack.meta())
    (s,) = [t for t in listed.event_types if t.key == type_key]
    assert s.event_count == 2 and s.create_contacts
    assert s.first_seen.ToDatetime() <= s.last_seen.ToDatetime()
    d = await stub(stack).GetEventTypeDetail(console_pb2.GetEventTypeDetailRequest(key=type_key),
                                             metadata=stack.meta())
    shapes = {p.path: (list(p.types), p.seen) for p in d.params}
    assert d.sampled == 2
    assert shapes["email"] == (["number", "string"], 2)
    assert shapes["items.array[].price"] == (["string"], 1)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub(stack).GetEventTypeDetail(console_pb2.GetEventTypeDetailRequest(key=type_key),
                                             metadata=stack.meta(stack.other_key))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_param_shapes_keep_first_seen_order_and_examples() -> None:
    """Paths come in first-seen order with one scalar example; bad bodies are skipped."""
    body = json.dumps({"params": [{"name": "a", "value": {"b": [1, {"c": True}]}}]})
    shapes = param_shapes([body, "not json"])
    assert [s.path for s in shapes] == ["a", "a.b", "a.b[]", "a.b[].c"]
    assert shapes[2].types == ["number", "object"] and shapes[2].example == "1"
    assert shapes[3].example == "true"


async def test_contact_events_event_runs_and_versions(stack: Stack) -> None:
    """A contact's events, the run an event started and a workflow's versions, per account."""
    type_key = f"wf_{secrets.token_hex(3)}"
    wf = workflows_pb2_grpc.WorkflowServiceStub(stack.channel)
    doc = {"name": "one", "active": True, "trigger": {"eventTypeKey": type_key},
           "start": "end", "blocks": [{"id": "end", "type": "end"}]}
    created = await wf.CreateWorkflow(workflows_pb2.CreateWorkflowRequest(
        definition_json=json.dumps(doc)), metadata=stack.meta())
    await wf.UpdateWorkflow(workflows_pb2.UpdateWorkflowRequest(
        id=created.id, definition_json=json.dumps({**doc, "name": "two"})), metadata=stack.meta())
    email = f"{secrets.token_hex(4)}@x.example"
    reply = await stack.post_event({"eventTypeKey": type_key, "keyValue": email,
                                    "params": [{"name": "email", "value": email}]})
    event_id = int(reply.headers["x-event-id"])
    runs = console_pb2.ListEventRunsRequest(event_id=event_id)
    for _ in range(200):
        found = await stub(stack).ListEventRuns(runs, metadata=stack.meta())
        if found.runs:
            break
        await asyncio.sleep(0.05)
    assert [r.workflow_id for r in found.runs] == [created.id]
    assert not (await stub(stack).ListEventRuns(runs, metadata=stack.meta(stack.other_key))).runs
    contact_id = found.runs[0].contact_id
    events = await stub(stack).ListContactEvents(
        console_pb2.ListContactEventsRequest(contact_id=contact_id), metadata=stack.meta())
    assert [e.id for e in events.events] == [event_id]
    versions = await stub(stack).ListWorkflowVersions(
        workflows_pb2.GetWorkflowRequest(id=created.id), metadata=stack.meta())
    assert [(v.version, v.name) for v in versions.workflows] == [(2, "two"), (1, "one")]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub(stack).ListWorkflowVersions(workflows_pb2.GetWorkflowRequest(id=created.id),
                                               metadata=stack.meta(stack.other_key))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub(stack).ListContactEvents(console_pb2.ListContactEventsRequest(),
                                            metadata=stack.meta())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_chart_scale_is_the_next_round_number() -> None:
    """The chart's top is the smallest of 1, 2, 5, 10, 20… at or above the busiest hour."""
    from datetime import UTC, datetime

    from server.console.chart import hourly_chart

    since = datetime(2025, 1, 1, tzinfo=UTC)
    assert hourly_chart(since=since, series=[("a", [2] + [0] * 23)]).peak == 2
    assert hourly_chart(since=since, series=[("a", [3] * 24), ("b", [4] * 24)]).peak == 10
    chart = hourly_chart(since=since, series=[("a", [0] * 23 + [150])])
    assert chart.peak == 200 and len(chart.bars) == 1 and "a: 150" in chart.bars[0].label
