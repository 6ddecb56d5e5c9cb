"""Event-type settings over HTTP and gRPC: PATCH semantics, every bad body refused by name
and changing nothing, "Validate parameters" enforced on every ingest path, and the
recorded structure of params (real server, gateway, writer process; SQLite or PostgreSQL)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from eventflow.v1 import event_types_pb2, event_types_pb2_grpc, events_pb2, events_pb2_grpc
from server.codec.values import build_value
from server.eventtypes.shapes import MAX_NAMES
from tests.support import Stack, grpc_reason, grpc_violations


def _key(prefix: str = "et") -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


def _event(type_key: str, *params: tuple[str, Any], key: str = "c@example.com",
           **extra: Any) -> dict[str, Any]:
    return {"eventTypeKey": type_key, "keyValue": key,
            "params": [{"name": n, "value": v} for n, v in params], **extra}


def _request(type_key: str, *params: tuple[str, Any]) -> events_pb2.GenerateEventRequest:
    req = events_pb2.GenerateEventRequest(event_type_key=type_key, key_value="c@example.com")
    for name, value in params:
        build_value(value, req.params.add(name=name).value)
    return req


async def _patch(stack: Stack, key: str, body: Any, **kw: Any) -> Any:
    return await stack.http.patch(f"/api/v1/event-types/{key}", json=body,
                                  headers=stack.auth(kw.pop("api_key", None)), **kw)


async def _get(stack: Stack, key: str, api_key: str | None = None) -> Any:
    return await stack.http.get(f"/api/v1/event-types/{key}", headers=stack.auth(api_key))


ORDER_RULES = [{"name": "orderId", "required": True}, {"name": "total", "required": True},
               {"name": "coupon", "required": False}]
EXPECTED = ('{"params":[{"name":"orderId","required":true},{"name":"total","required":true},'
            '{"name":"coupon","required":false}]}')


async def test_patch_changes_only_what_it_names(stack: Stack) -> None:
    """A new key is created by its first PATCH with the defaults; each later PATCH changes
    only its members; switching segmentation on records when, off clears it, and asking
    for the state it is in keeps the time."""
    key = _key()
    assert (await _get(stack, key)).status_code == 404
    before = datetime.now(UTC) - timedelta(seconds=1)
    r = await _patch(stack, key, {"segmentation": True})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["key"] == key and doc["eventCount"] == 0 and doc["params"] == []
    assert doc["segmentation"] is True and doc["createContacts"] is True
    assert doc["validateParams"] == []
    since = datetime.fromisoformat(doc["segmentationSince"])
    assert before <= since <= datetime.now(UTC) + timedelta(seconds=1)

    r = await _patch(stack, key, {"createContacts": False, "validateParams": ORDER_RULES})
    doc = r.json()
    assert doc["segmentation"] is True and doc["segmentationSince"] == since.isoformat(
        timespec="milliseconds").replace("+00:00", "Z")
    assert doc["createContacts"] is False and doc["validateParams"] == ORDER_RULES
    again = (await _patch(stack, key, {"segmentation": True})).json()
    assert again["segmentationSince"] == doc["segmentationSince"]
    assert (await _get(stack, key)).json() == again

    off = (await _patch(stack, key, {"segmentation": False})).json()
    assert off["segmentation"] is False and off["segmentationSince"] is None
    assert off["validateParams"] == ORDER_RULES and off["createContacts"] is False
    on = (await _patch(stack, key, {"segmentation": True})).json()
    assert datetime.fromisoformat(on["segmentationSince"]) >= since
    assert (await _patch(stack, key, {"validateParams": []})).json()["validateParams"] == []
    listed = (await stack.http.get("/api/v1/event-types", headers=stack.auth())).json()
    (mine,) = [t for t in listed if t["key"] == key]
    assert mine["segmentation"] is True and mine["createContacts"] is False
    assert "params" not in mine


@pytest.mark.parametrize(("body", "field", "fragment"), [
    ({"segmentation": "yes"}, "segmentation", "must be true or false"),
    ({"createContacts": 1}, "createContacts", "must be true or false"),
    ({"segmentation": None}, "segmentation", "must be true or false"),
    ({"validateParams": {"name": "a"}}, "validateParams", "must be a list"),
    ({"validateParams": ["orderId"]}, "validateParams[0]", "must be an object"),
    ({"validateParams": [{"name": "a", "required": "yes"}]}, "validateParams[0].required",
     "must be true or false"),
    ({"validateParams": [{"name": "a"}]}, "validateParams[0].required", "is required"),
    ({"validateParams": [{"required": True}]}, "validateParams[0].name", "is required"),
    ({"validateParams": [{"name": 5, "required": True}]}, "validateParams[0].name",
     "must be a string"),
    ({"validateParams": [{"name": "a", "required": True, "type": "string"}]},
     "validateParams[0].type", "is not a member of a param rule"),
    ({"validateParams": [{"name": "", "required": True}]}, "validateParams[0].name",
     "is required"),
    ({"validateParams": [{"name": "a" * 101, "required": True}]}, "validateParams[0].name",
     "the limit is 100"),
    ({"validateParams": [{"name": "a", "required": True}, {"name": "a", "required": False}]},
     "validateParams[1].name", "duplicates the name 'a' of validateParams[0]"),
    ({"validateParams": [{"name": f"p{i}", "required": True} for i in range(201)]},
     "validateParams", "the limit is 200"),
    ({"segmentation": True, "color": "red"}, "color", "is not a member this route knows"),
    ([], "body", "must be a JSON object"),
])
async def test_bad_bodies_are_refused_by_name_and_change_nothing(
        stack: Stack, body: Any, field: str, fragment: str) -> None:
    key = _key("bad")
    await _patch(stack, key, {"validateParams": [{"name": "keep", "required": True}]})
    before = (await _get(stack, key)).json()
    r = await _patch(stack, key, body)
    assert r.status_code == 400, r.text
    violations = r.json()["violations"]
    assert violations[0]["field"] == field and fragment in violations[0]["message"], violations
    assert (await _get(stack, key)).json() == before


async def test_bad_keys_and_wrong_requests(stack: Stack) -> None:
    """A key an event could not carry is refused by name and creates nothing; a query
    parameter, a body that is not JSON and an unknown key's GET are answered as such."""
    types_before = await stack.count_event_types()
    r = await _patch(stack, "bad|key", {"segmentation": True})
    assert r.status_code == 400
    assert r.json()["violations"][0]["field"] == "eventTypeKey"
    assert "forbidden character(s) |" in r.json()["violations"][0]["message"]
    r = await _patch(stack, "k" * 101, {})
    assert r.status_code == 400 and "the limit is 100" in r.text
    assert await stack.count_event_types() == types_before
    r = await stack.http.patch("/api/v1/event-types/x", content=b"segmentation=1",
                               headers={**stack.auth(), "Content-Type": "text/plain"})
    assert r.status_code == 415
    r = await stack.http.get(f"/api/v1/event-types/{_key()}?verbose=1", headers=stack.auth())
    assert r.status_code == 400 and r.json()["violations"][0]["field"] == "verbose"
    assert (await stack.http.get("/api/v1/event-types/x")).status_code == 401


async def test_accounts_do_not_share_settings(stack: Stack) -> None:
    """The same key in another account is another type: its settings, its validation."""
    key = _key("iso")
    await _patch(stack, key, {"validateParams": [{"name": "orderId", "required": True}]})
    assert (await _get(stack, key, stack.other_key)).status_code == 404
    r = await stack.post_event(_event(key), key=stack.other_key)
    assert r.status_code == 200, r.text
    other = (await _get(stack, key, stack.other_key)).json()
    assert other["validateParams"] == [] and other["eventCount"] == 1
    assert (await stack.post_event(_event(key))).status_code == 400


async def test_missing_required_params_are_refused_on_every_path(stack: Stack) -> None:
    """Each missing required param is named, with the structure the type expects, by
    /api/v2/event, /api/v1/event, past_events, GenerateEvent, GenerateEvents and
    StreamEvents; null counts as missing, optional and unlisted params may be absent or
    present; nothing refused is stored, and an emptied list accepts the event again."""
    key = _key("order")
    await _patch(stack, key, {"validateParams": ORDER_RULES})
    stub = events_pb2_grpc.EventServiceStub(stack.channel)
    before = await stack.count_events()

    r = await stack.post_event(_event(key, ("total", None), ("coupon", "X")))
    assert r.status_code == 400, r.text
    violations = [(v["field"], v["message"]) for v in r.json()["violations"]]
    assert violations == [
        ("params", f"has no 'orderId', a required param; event type {key!r} expects {EXPECTED}"),
        ("params", f"has no 'total', a required param; event type {key!r} expects {EXPECTED}")]
    r = await stack.post_event(_event(key, ("orderId", "1")), path="/api/v1/event")
    assert r.status_code == 400 and r.json()["violations"][0]["message"].startswith(
        "has no 'total'")
    past = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    await stack.segmentation_on(key)  # past events of a type that is off are refused
    r = await stack.http.post("/api/v2/past_events", headers=stack.auth(), json=[
        _event(key, ("orderId", 1), occurred=past),
        _event(key, ("orderId", 1), ("total", 10), occurred=past)])
    results = r.json()["results"]
    assert results[0]["status"] == "INVALID" and results[1]["status"] == "ACCEPTED"
    assert results[0]["violations"][0]["field"] == "events[0].params"
    assert "has no 'total'" in results[0]["violations"][0]["message"]

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GenerateEvent(_request(key, ("orderId", "1")), metadata=stack.meta())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert grpc_reason(err.value) == "INVALID_ARGUMENT"
    assert grpc_violations(err.value) == [
        ("params", f"has no 'total', a required param; event type {key!r} expects {EXPECTED}")]
    batch = await stub.GenerateEvents(events_pb2.GenerateEventsRequest(events=[
        _request(key, ("total", 1)), _request(key, ("orderId", "2"), ("total", 2)),
        _request(key, ("orderId", "3"), ("total", 3), ("note", "extra"))]),
        metadata=stack.meta())
    assert [r.status for r in batch.results] == ["INVALID", "ACCEPTED", "ACCEPTED"]
    assert "has no 'orderId'" in batch.results[0].violations[0].description

    async def feed() -> Any:
        yield events_pb2.StreamEventsRequest(client_ref="a", event=_request(key))
        yield events_pb2.StreamEventsRequest(
            client_ref="b", event=_request(key, ("orderId", "4"), ("total", 4)))

    acks = [a async for a in stub.StreamEvents(feed(), metadata=stack.meta())]
    assert [(a.client_ref, a.result.status) for a in acks] == [("a", "INVALID"),
                                                               ("b", "ACCEPTED")]
    assert [v.description[:15] for v in acks[0].result.violations] == ["has no 'orderId",
                                                                       "has no 'total',"]
    assert await stack.count_events() == before + 4

    # Field rules and the type's rule are refused together, in one answer.
    r = await stack.post_event({"eventTypeKey": key, "params": []})
    assert [v["field"] for v in r.json()["violations"]] == ["keyValue", "params", "params"]

    await _patch(stack, key, {"validateParams": [{"name": "orderId", "required": False}]})
    assert (await stack.post_event(_event(key))).status_code == 200
    await _patch(stack, key, {"validateParams": []})
    assert (await stack.post_event(_event(key))).status_code == 200


async def test_grpc_get_and_update_with_patch_semantics(stack: Stack) -> None:
    stub = event_types_pb2_grpc.EventTypeServiceStub(stack.channel)
    meta = stack.meta()
    key = _key("grpc")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetEventType(event_types_pb2.GetEventTypeRequest(key=key), metadata=meta)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    t = await stub.UpdateEventType(event_types_pb2.UpdateEventTypeRequest(
        key=key, create_contacts=False), metadata=meta)
    assert t.key == key and not t.create_contacts and not t.segmentation
    assert not t.HasField("segmentation_since")
    rules = event_types_pb2.ParamRules(params=[events_pb2.ParamRule(name="sku", required=True)])
    t = await stub.UpdateEventType(event_types_pb2.UpdateEventTypeRequest(
        key=key, segmentation=True, validate_params=rules), metadata=meta)
    assert not t.create_contacts and t.segmentation and t.HasField("segmentation_since")
    assert [(r.name, r.required) for r in t.validate_params] == [("sku", True)]
    # Unset fields stay; an empty ParamRules switches validation off.
    t = await stub.UpdateEventType(event_types_pb2.UpdateEventTypeRequest(key=key),
                                   metadata=meta)
    assert t.segmentation and [r.name for r in t.validate_params] == ["sku"]
    t = await stub.UpdateEventType(event_types_pb2.UpdateEventTypeRequest(
        key=key, validate_params=event_types_pb2.ParamRules()), metadata=meta)
    assert list(t.validate_params) == [] and t.segmentation and not t.create_contacts
    got = await stub.GetEventType(event_types_pb2.GetEventTypeRequest(key=key), metadata=meta)
    assert got == t
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.UpdateEventType(event_types_pb2.UpdateEventTypeRequest(
            key=key, validate_params=event_types_pb2.ParamRules(params=[
                events_pb2.ParamRule(name="a"), events_pb2.ParamRule(name="a")])),
            metadata=meta)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert grpc_violations(err.value)[0][0] == "validateParams[1].name"
    for bad in ("", "a?b"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.UpdateEventType(event_types_pb2.UpdateEventTypeRequest(key=bad),
                                       metadata=meta)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert grpc_violations(err.value)[0][0] == "eventTypeKey"
    listed = await events_pb2_grpc.EventServiceStub(stack.channel).ListEventTypes(
        events_pb2.ListEventTypesRequest(), metadata=meta)
    (mine,) = [e for e in listed.event_types if e.key == key]
    assert mine.segmentation and not mine.create_contacts


async def test_recorded_structure_counts_stored_events(stack: Stack) -> None:
    """Names and JSON types with counts, over every path that stores events (live, past,
    batches); a duplicate message id is not counted again, a refused event not at all."""
    key = _key("shape")
    stub = events_pb2_grpc.EventServiceStub(stack.channel)
    assert (await stack.post_event(_event(key, ("orderId", "A1"), ("total", 10.5),
                                          ("items", [{"sku": "x"}]),
                                          messageId="m-1"))).status_code == 200
    assert (await stack.post_event(_event(key, ("orderId", 7), ("total", None),
                                          ("gift", True), ("meta", {"a": 1}),
                                          messageId="m-2"))).status_code == 200
    # The same message id again: a duplicate, stored once.
    assert (await stack.post_event(_event(key, ("orderId", "A1"), messageId="m-1"))
            ).status_code == 200
    past = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    await stack.segmentation_on(key)  # past events of a type that is off are refused
    r = await stack.http.post("/api/v2/past_events", headers=stack.auth(),
                              json=[_event(key, ("orderId", "P"), occurred=past)])
    assert r.json()["successCount"] == 1
    await stub.GenerateEvents(events_pb2.GenerateEventsRequest(events=[
        _request(key, ("orderId", "B")), _request(key, ("orderId", "C"), ("orderId", "D"))]),
        metadata=stack.meta())  # the second is refused: a duplicate param name
    doc = (await _get(stack, key)).json()
    assert doc["eventCount"] == 4
    params = {p["name"]: (p["count"], p["types"]) for p in doc["params"]}
    assert params == {"orderId": (4, {"string": 3, "number": 1}),
                      "total": (2, {"number": 1, "null": 1}),
                      "items": (1, {"list": 1}), "gift": (1, {"boolean": 1}),
                      "meta": (1, {"object": 1})}
    assert doc["params"][0]["name"] == "orderId"  # the most common first
    first = doc["params"][0]
    assert first["firstSeen"] <= first["lastSeen"]
    got = await event_types_pb2_grpc.EventTypeServiceStub(stack.channel).GetEventType(
        event_types_pb2.GetEventTypeRequest(key=key), metadata=stack.meta())
    by_name = {p.name: p for p in got.params}
    assert [(c.type, c.count) for c in by_name["orderId"].types] == [("string", 3),
                                                                    ("number", 1)]


async def test_a_type_records_a_bounded_number_of_names(stack: Stack) -> None:
    """Past MAX_NAMES (name, type) pairs a type records no new ones; known ones count on."""
    key = _key("many")
    names = [(f"p{i:03d}", i) for i in range(MAX_NAMES + 30)]
    assert (await stack.post_event(_event(key, *names[:150]))).status_code == 200
    assert (await stack.post_event(_event(key, *names[150:]))).status_code == 200
    assert (await stack.post_event(_event(key, ("p000", "s")))).status_code == 200
    doc = (await _get(stack, key)).json()
    recorded = {p["name"]: p["types"] for p in doc["params"]}
    assert len(recorded) == MAX_NAMES
    assert recorded["p000"] == {"number": 1}  # a new pair past the limit is not recorded
    assert "p229" not in recorded and "p149" in recorded
