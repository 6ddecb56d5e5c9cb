"""An event's object values keep the key order the caller sent, end to end: over HTTP (v2,
v1, past events) and gRPC (GenerateEvent, GenerateEvents, StreamEvents, whose order is
the order of the map entries on the wire), read back by GET /api/v1/events[/{id}], gRPC
GetEvent / ListEvents (the params' map entries on the wire, and body_json) and the
console's event page. Protobuf's parsed maps keep no order; the rule is in
docs/compatibility.md ("Key order")."""

from __future__ import annotations

import html
import json
import re
import secrets
from typing import Any

import grpc
import orjson

from eventflow.v1 import events_pb2
from server.accounts import create_account
from server.codec import wirejson
from server.codec.jsonbody import event_from_json
from server.codec.wire import batch_bytes, event_bytes, varint
from server.ingest.model import MISSING
from server.mail.sink import MailSink
from tests.compat.conftest import replay
from tests.compat.helpers import events_of, eventually, letters_to, unique_email
from tests.console.support import ConsoleClient
from tests.support import Stack

TYPE = "keyOrder"
SERVICE = "/eventflow.v1.EventService/"


def shaped(key: str) -> dict[str, Any]:
    """A body whose objects are in no sorted or hash order: nested, 200 keys, keys whose
    Java hashCode collides (eSputnik's own maps), unicode keys and arrays of objects."""
    many = {f"k{(i * 7919) % 1000:03d}": i for i in range(200)}
    return {"eventTypeKey": TYPE, "keyValue": key, "params": [
        {"name": "nested", "value": {"zeta": 1, "alpha": {"b": 2, "a": 1},
                                     "mid": [{"z": 1, "a": 2}, {"y": {"q": 1, "c": None}}]}},
        {"name": "many", "value": many},
        {"name": "collide", "value": {"BB": 1, "Aa": 2, "BBBB": 3, "AaAa": 4, "AaBB": 5,
                                      "BBAa": 6}},
        {"name": "unicode", "value": {"я": 1, "ä": "é", "😀": True, "a": 4, "中文": 5, "": 6}},
        {"name": "items", "value": [{"sku": "b", "price": 2.5, "name": "x"},
                                    {"name": "y", "sku": "a", "tags": {"w": 1, "b": 2}}]},
        {"name": "text", "value": "plain"},
    ]}


def pairs(value: Any) -> Any:
    """``value`` with every object as its list of (key, value) pairs: equal only in order."""
    if isinstance(value, dict):
        return [(k, pairs(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [pairs(v) for v in value]
    return value


def assert_same_order(got: Any, sent: Any) -> None:
    assert got == sent
    assert pairs(got) == pairs(sent)


async def read_http(s: Stack, event_id: int | str) -> dict[str, Any]:
    r = await replay(s, "GET", f"/api/v1/events/{event_id}", content_type=None)
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = json.loads(r.text)
    return doc


def stored_params(raw: bytes) -> list[tuple[str, Any]]:
    """The params of serialized StoredEvent bytes (field 4), read from the wire in order."""
    out = []
    for param in wirejson.payloads(raw, 4):
        name = b"".join(wirejson.payloads(param, 1)).decode()
        value = b"".join(wirejson.payloads(param, 2))
        out.append((name, wirejson.value_of(value, 1 << 30, MISSING)))
    return out


async def read_grpc(s: Stack, event_id: int) -> bytes:
    get = s.channel.unary_unary(SERVICE + "GetEvent",
                                request_serializer=events_pb2.GetEventRequest.SerializeToString)
    raw: bytes = await get(events_pb2.GetEventRequest(id=event_id), metadata=s.meta())
    return raw


async def check_everywhere(s: Stack, event_id: int, sent: dict[str, Any]) -> None:
    """The event reads back in ``sent``'s order over HTTP, gRPC and in the console."""
    doc = await read_http(s, event_id)
    assert_same_order(doc["body"], sent)
    assert_same_order(doc["params"], sent["params"])
    raw = await read_grpc(s, event_id)
    stored = events_pb2.StoredEvent.FromString(raw)
    assert stored.body_json == orjson.dumps(sent).decode()
    expected = [(p["name"], p["value"]) for p in sent["params"]]
    assert_same_order(stored_params(raw), expected)
    console = ConsoleClient(s.http_url)
    try:
        assert (await console.sign_in(s.api_key)).status_code == 303
        page = await console.get(f"/events/{event_id}")
        assert page.status_code == 200
        found = re.search(r'<pre class="json" id="event-body"[^>]*>(.*?)</pre>', page.text,
                          re.DOTALL)
        assert found is not None
        assert html.unescape(found.group(1)) == json.dumps(sent, indent=2, ensure_ascii=False)
    finally:
        await console.aclose()


async def test_http_v2_event_keeps_key_order(compat: Stack) -> None:
    """POST /api/v2/event: every object of the params reads back in the order sent."""
    body = shaped(f"http-{secrets.token_hex(3)}")
    r = await replay(compat, "POST", "/api/v2/event", orjson.dumps(body))
    assert r.status_code == 200, r.text
    await check_everywhere(compat, int(r.headers["X-Event-Id"]), body)
    (listed,) = await events_of(compat, TYPE, body["keyValue"])
    assert_same_order(listed["body"], body)


async def test_duplicate_json_keys_keep_first_place_last_value(compat: Stack) -> None:
    """A key repeated in one JSON object keeps its first place and takes the last value
    (as JSON parsers do); v1's escaped JSON text is kept as text, untouched."""
    key = f"dup-{secrets.token_hex(3)}"
    text = ('{"eventTypeKey":"' + TYPE + '","keyValue":"' + key + '","params":['
            '{"name":"dup","value":{"b":1,"a":2,"b":3}}]}')
    r = await replay(compat, "POST", "/api/v2/event", text)
    assert r.status_code == 200, r.text
    expected = {"eventTypeKey": TYPE, "keyValue": key,
                "params": [{"name": "dup", "value": {"b": 3, "a": 2}}]}
    await check_everywhere(compat, int(r.headers["X-Event-Id"]), expected)
    v1 = {"eventTypeKey": TYPE, "keyValue": key + "v1",
          "params": [{"name": "json", "value": '{"z":1,"a":{"y":2,"b":3}}'}]}
    r = await replay(compat, "POST", "/api/v1/event", orjson.dumps(v1))
    assert r.status_code == 200, r.text
    await check_everywhere(compat, int(r.headers["X-Event-Id"]), v1)


async def test_past_events_keep_key_order(compat: Stack) -> None:
    """POST /api/v2/past_events: each event of the batch keeps its own order."""
    bodies = [{**shaped(f"past{i}-{secrets.token_hex(3)}"), "occurred": "2026-01-02T10:00"}
              for i in range(2)]
    bodies[1]["params"].reverse()
    await compat.segmentation_on(TYPE)  # past events of a type that is off are refused
    r = await replay(compat, "POST", "/api/v2/past_events", orjson.dumps({"events": bodies}))
    assert r.status_code == 200, r.text
    for body, result in zip(bodies, r.json()["results"]):
        sent = {k: v for k, v in body.items() if k != "occurred"}
        await check_everywhere(compat, result["eventId"], sent)


async def test_grpc_methods_keep_wire_order(compat: Stack) -> None:
    """GenerateEvent, GenerateEvents and StreamEvents: the map entries' order on the wire
    is the stored order, and ListEvents answers it on the wire again."""
    key = f"grpc-{secrets.token_hex(3)}"
    sent = [shaped(f"{key}-{i}") for i in range(4)]
    for i, body in enumerate(sent):
        body["params"][0]["value"]["n"] = i
    wire = [event_bytes(event_from_json(body)) for body in sent]
    meta = compat.meta()

    one = compat.channel.unary_unary(
        SERVICE + "GenerateEvent", response_deserializer=events_pb2.GenerateEventResponse.FromString)
    ids = [(await one(wire[0], metadata=meta)).event_id]
    many = compat.channel.unary_unary(
        SERVICE + "GenerateEvents",
        response_deserializer=events_pb2.GenerateEventsResponse.FromString)
    reply = await many(batch_bytes(wire[1:3]), metadata=meta)
    assert [r.status for r in reply.results] == ["ACCEPTED", "ACCEPTED"]
    ids += [r.event_id for r in reply.results]
    stream = compat.channel.stream_stream(
        SERVICE + "StreamEvents", response_deserializer=events_pb2.StreamEventsResponse.FromString)
    ref = b"last"
    call = stream(iter([b"\x0a" + varint(len(ref)) + ref
                        + b"\x12" + varint(len(wire[3])) + wire[3]]), metadata=meta)
    acks = [ack async for ack in call]
    assert [a.client_ref for a in acks] == ["last"] and acks[0].result.status == "ACCEPTED"
    ids.append(acks[0].result.event_id)

    for event_id, body in zip(ids, sent):
        await check_everywhere(compat, event_id, body)
    listing = compat.channel.unary_unary(
        SERVICE + "ListEvents", request_serializer=events_pb2.ListEventsRequest.SerializeToString)
    raw = await listing(events_pb2.ListEventsRequest(event_type_key=TYPE, page_size=1000),
                        metadata=meta)
    by_key = {}
    for stored in wirejson.payloads(raw, 1):
        by_key[events_pb2.StoredEvent.FromString(stored).key_value] = stored
    for body in sent:
        expected = [(p["name"], p["value"]) for p in body["params"]]
        assert_same_order(stored_params(by_key[body["keyValue"]]), expected)


async def test_a_grpc_status_of_a_bad_stream_message_is_still_invalid(compat: Stack) -> None:
    """Bytes protobuf cannot parse are still INVALID_ARGUMENT on the event methods."""
    one = compat.channel.unary_unary(SERVICE + "GenerateEvent")
    try:
        await one(b"\x1a\x05ab", metadata=compat.meta())
    except grpc.aio.AioRpcError as exc:
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
    else:
        raise AssertionError("a truncated request was accepted")


async def test_workflow_letter_iterates_an_object_in_the_order_sent(compat: Stack,
                                                                    sink: MailSink) -> None:
    """A workflow's email iterating the event's object (#foreach over keySet) lists the
    keys in the order the caller sent them, 40 of them in no sorted order."""
    _, key = await create_account(compat.engine, name=f"order-{secrets.token_hex(3)}")
    r = await replay(compat, "POST", "/api/v1/messages", orjson.dumps({
        "name": "keys", "subject": "Your keys", "text": "",
        "html": "<p>#foreach($k in $data.keySet())$k=$data.get($k);#end</p>"}), key=key)
    assert r.status_code == 200, r.text
    definition = {"name": "keys", "active": True, "trigger": {"eventTypeKey": "keysInOrder"},
                  "start": "mail", "blocks": [{"id": "mail", "type": "email",
                                               "templateId": r.json()["id"], "to": "${email}",
                                               "jsonParam": "attrs"}]}
    r = await replay(compat, "POST", "/api/v1/workflows", orjson.dumps(definition), key=key)
    assert r.status_code == 200, r.text
    attrs = {f"a{(i * 17) % 40:02d}": i for i in range(40)}
    email = unique_email("keys")
    r = await replay(compat, "POST", "/api/v2/event", orjson.dumps({
        "eventTypeKey": "keysInOrder", "keyValue": email,
        "params": [{"name": "email", "value": email}, {"name": "attrs", "value": attrs}]}),
        key=key)
    assert r.status_code == 200, r.text

    async def letter() -> Any:
        return letters_to(sink, email)

    (sent,) = await eventually(letter)
    html_body = sent.message.get_body(("html",)).get_content()
    assert "".join(f"{k}={v};" for k, v in attrs.items()) in html_body


async def test_orders_keep_the_members_order_sent(compat: Stack) -> None:
    """POST /api/v1/orders (Structs to the server): the order, its items and a member of
    the caller's own read back, and reach the orderCreated event, in the order sent."""
    order_id = f"KO-{secrets.token_hex(3)}"
    extra = {f"x{(i * 13) % 50:02d}": i for i in range(50)}
    order = {"status": "INITIALIZED", "totalCost": 10, "externalOrderId": order_id,
             "email": unique_email("ko"), "currency": "UAH", "meta": extra,
             "externalCustomerId": f"c-{order_id}", "date": "2026-01-02T10:00:00",
             "items": [{"quantity": 1, "name": "b", "cost": 10, "zz": {"q": 1, "a": 2},
                        "externalItemId": "i1"}]}
    r = await replay(compat, "POST", "/api/v1/orders", orjson.dumps({"orders": [order]}))
    assert r.status_code == 200, r.text
    r = await replay(compat, "GET", f"/api/v1/orders/{order_id}", content_type=None)
    assert r.status_code == 200, r.text
    stored = json.loads(r.text)["order"]
    assert list(stored) == list(order)
    assert pairs(stored["meta"]) == pairs(extra)
    assert list(stored["items"][0]) == list(order["items"][0])
    assert pairs(stored["items"][0]["zz"]) == [("q", 1), ("a", 2)]
    r = await replay(compat, "GET", "/api/v1/orders", content_type=None,
                     params={"externalCustomerId": order["externalCustomerId"]})
    assert r.status_code == 200, r.text
    assert pairs(json.loads(r.text)[0]["order"]) == pairs(stored)
    (event,) = await events_of(compat, "orderCreated", order["externalCustomerId"])
    assert [p["name"] for p in event["body"]["params"]] == list(order)
    params = {p["name"]: p["value"] for p in event["body"]["params"]}
    assert pairs(params["meta"]) == pairs(extra)


async def test_smartsend_object_json_param_keeps_key_order(compat: Stack,
                                                           sink: MailSink) -> None:
    """smartsend's jsonParam given as an object (a Struct to the server): the letter
    iterates its keys in the order sent."""
    _, key = await create_account(compat.engine, name=f"ss-{secrets.token_hex(3)}")
    r = await replay(compat, "POST", "/api/v1/messages", orjson.dumps({
        "name": "keys", "subject": "Smart keys", "text": "",
        "html": "<p>#foreach($k in $data.keySet())$k;#end</p>"}), key=key)
    assert r.status_code == 200, r.text
    data = {f"s{(i * 7) % 30:02d}": i for i in range(30)}
    email = unique_email("ss")
    body = {"recipients": [{"locator": email, "jsonParam": data}], "email": True}
    sent = await replay(compat, "POST", f"/api/v1/message/{r.json()['id']}/smartsend",
                        orjson.dumps(body), key=key)
    assert sent.status_code == 200 and sent.json()["results"][0]["status"] == "OK", sent.text

    async def letter() -> Any:
        return letters_to(sink, email)

    (got,) = await eventually(letter)
    assert "".join(f"{k};" for k in data) in got.message.get_body(("html",)).get_content()
