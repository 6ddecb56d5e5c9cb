"""EVENT_SEGMENTATION_DISABLED (issue 13): a past event (one with ``occurred``) of a type
whose segmentation switch is off when it arrives is refused with that status, alone in its
call, stores nothing, and is judged by the switch as it is now; live events of the type are
accepted as before (real server, gateway, writer process; SQLite or PostgreSQL)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from eventflow.v1 import event_types_pb2, event_types_pb2_grpc, events_pb2, events_pb2_grpc
from tests.support import Stack, grpc_reason, grpc_violations

STATUS = "EVENT_SEGMENTATION_DISABLED"


def _key(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


def _day() -> str:
    return (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")


def _past(type_key: str, key: str = "past@example.com", **extra: Any) -> dict[str, Any]:
    return {"eventTypeKey": type_key, "keyValue": key, "occurred": _day(),
            "params": [{"name": "n", "value": 1}], **extra}


def _request(type_key: str, *, past: bool) -> events_pb2.GenerateEventRequest:
    req = events_pb2.GenerateEventRequest(event_type_key=type_key, key_value="past@example.com")
    if past:
        req.occurred.FromDatetime(datetime.now(UTC) - timedelta(days=1))
    return req


def _message(type_key: str) -> str:
    return (f"{STATUS}: event type {type_key!r} has segmentation off; switch it on (PATCH "
            f'/api/v1/event-types/{type_key} {{"segmentation": true}}) to import its past events')


async def test_http_past_events_of_a_type_that_is_off_are_refused_alone(stack: Stack) -> None:
    """POST /api/v2/past_events: the events of a type that is off (never switched on, or
    unknown) get EVENT_SEGMENTATION_DISABLED naming eventTypeKey and are not stored; the
    others of the call are accepted, and the counts say so."""
    off, on = _key("past_off"), _key("past_on")
    await stack.segmentation_on(on)
    before = await stack.count_events()
    r = await stack.http.post("/api/v2/past_events", headers=stack.auth(), json={"events": [
        _past(off), _past(on), _past(off, "x|y"), _past(on, "other@example.com")]})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert [x["status"] for x in doc["results"]] == [STATUS, "ACCEPTED", "INVALID", "ACCEPTED"]
    assert (doc["successCount"], doc["errorCount"]) == (2, 2)
    assert doc["results"][0] == {"status": STATUS, "violations": [
        {"field": "events[0].eventTypeKey", "message": _message(off)}]}
    # A field rule is judged before the switch: the bad key is INVALID, not disabled.
    assert doc["results"][2]["violations"][0]["field"] == "events[2].keyValue"
    assert await stack.count_events() == before + 2
    assert (await stack.http.get(f"/api/v1/event-types/{off}",
                                 headers=stack.auth())).status_code == 404
    # A live event of the type is accepted: the switch is about imports only.
    live = {k: v for k, v in _past(off).items() if k != "occurred"}
    assert (await stack.post_event(live)).status_code == 200
    assert (await stack.post_event(live, path="/api/v1/event")).status_code == 200


async def test_grpc_past_events_of_a_type_that_is_off_are_refused(stack: Stack) -> None:
    """GenerateEvent answers INVALID_ARGUMENT with reason SEGMENTATION_DISABLED (metadata
    status) and the eventTypeKey violation; GenerateEvents and StreamEvents refuse that
    event alone with the status; an event without occurred is live and accepted."""
    off, on = _key("grpc_off"), _key("grpc_on")
    meta = stack.meta()
    await event_types_pb2_grpc.EventTypeServiceStub(stack.channel).UpdateEventType(
        event_types_pb2.UpdateEventTypeRequest(key=on, segmentation=True), metadata=meta)
    stub = events_pb2_grpc.EventServiceStub(stack.channel)
    before = await stack.count_events()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GenerateEvent(_request(off, past=True), metadata=meta)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert grpc_reason(err.value) == "SEGMENTATION_DISABLED"
    assert grpc_violations(err.value) == [("eventTypeKey", _message(off))]
    batch = await stub.GenerateEvents(events_pb2.GenerateEventsRequest(events=[
        _request(off, past=True), _request(on, past=True), _request(off, past=False)]),
        metadata=meta)
    assert [r.status for r in batch.results] == [STATUS, "ACCEPTED", "ACCEPTED"]
    assert (batch.success_count, batch.error_count) == (2, 1)
    assert [(v.field, v.description) for v in batch.results[0].violations] == [
        ("eventTypeKey", _message(off))]

    async def feed() -> Any:
        yield events_pb2.StreamEventsRequest(client_ref="a", event=_request(off, past=True))
        yield events_pb2.StreamEventsRequest(client_ref="b", event=_request(on, past=True))

    acks = [a async for a in stub.StreamEvents(feed(), metadata=meta)]
    assert [(a.client_ref, a.result.status) for a in acks] == [("a", STATUS), ("b", "ACCEPTED")]
    assert await stack.count_events() == before + 3


async def test_the_switch_is_read_as_it_is_when_the_event_arrives(stack: Stack) -> None:
    """Switched on, the type's past events are accepted; switched off again, refused again
    (the current switch decides, not whether it was ever on)."""
    key = _key("past_flip")

    async def status() -> str:
        r = await stack.http.post("/api/v2/past_events", headers=stack.auth(),
                                  json=[_past(key)])
        return str(r.json()["results"][0]["status"])

    assert await status() == STATUS
    await stack.segmentation_on(key)
    assert await status() == "ACCEPTED"
    r = await stack.http.patch(f"/api/v1/event-types/{key}", json={"segmentation": False},
                               headers=stack.auth())
    assert r.status_code == 200 and r.json()["segmentation"] is False
    assert await status() == STATUS
