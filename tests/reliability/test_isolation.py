"""Issue 12, Build (isolation): every gateway route and every RPC, tried by one account with
another account's ids and keys, finds nothing of it and changes nothing of it.

Routes come from the app's route table and RPCs from the services' descriptors, and each
id they take is looked up in ``HTTP_IDS`` / ``RPC_IDS`` by name: a route or method added
later with an id nobody mapped fails here until it is mapped, so it is tried too.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import secrets
import string
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import orjson
import pytest
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor
from google.protobuf.json_format import MessageToJson
from google.protobuf.message_factory import GetMessageClass

import eventflow.v1
from server.config import Settings
from server.gateway.app import build_app
from server.gateway.openapi import route_operations
from server.mail.sink import MailSink
from tests.support import Backends, Stack, basic, private_backends, start_stack

# In every object of the victim's account: CONTENT where only a leak can show it (names,
# bodies, params); IDENT in what callers look things up by (keys, external ids, emails),
# which an answer may echo from the request itself.
CONTENT = "Secret" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(10))
IDENT = f"victim{secrets.token_hex(4)}"


@dataclass
class Victim:
    """What the victim account holds, by kind: its ids and a snapshot of each read."""

    ids: dict[str, Any]
    snapshot: dict[str, Any]


# Path parameter -> the victim's object of that kind (by the route's prefix where one
# name serves two kinds).
def _http_id(path: str, name: str, ids: dict[str, Any]) -> Any:
    if name == "item_id":
        return ids["field"] if path.startswith("/api/v1/fields") else ids["contact"]
    return {"event_id": ids["event"], "template_id": ids["template"],
            "message_id": ids["template"], "workflow_id": ids["workflow"],
            "run_id": ids["run"], "contact_id": ids["contact"],
            "external_order_id": ids["order"], "key": ids["event_type"],
            "session_id": ids["session"], "segment_id": ids["segment"],
            "group_id": ids["group"], "account_id": ids["account"], "key_id": ids["key"],
            "name": "console.css"}[name]


# Query parameters naming the victim's objects, on the routes that take them.
QUERY_IDS = {"contactId": "contact", "workflowId": "workflow", "runId": "run",
             "externalCustomerId": "external", "email": "email", "eventTypeKey": "event_type",
             "keyValue": "key_value"}
# Listings scoped by an id in the path: another account's id lists nothing, as an id
# that does not exist does (no answer tells the two apart).
LISTS_BY_ID = {"/api/v1/workflows/{workflow_id}/runs": {"runs": []},
               "/api/v1/workflow-runs/{run_id}/messages": {"messages": []}}
# A body for each write that would change the victim's object if it reached it.
BODIES: dict[str, Any] = {
    "/api/v1/workflows/{workflow_id}": {"name": "stolen", "trigger": {"eventTypeKey": "x"},
                                        "start": "t", "blocks": [
                                            {"id": "t", "type": "timer", "duration": "PT1M"}]},
    "/api/v1/contact/{item_id}": {"firstName": "stolen"},
    "/api/v1/fields/{item_id}": {"name": "stolen", "type": "text"},
    "/api/v1/segments/{segment_id}": {"name": "stolen", "conditions": {
        "contact": {"field": "firstName", "op": "isSet", "value": True}}},
    "/api/v1/message/{message_id}/smartsend": {"recipients": [
        {"locator": "thief@example.com", "email": True}], "email": True},
}


async def _eventually(check: Any, timeout: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError("timed out")


async def _seed(s: Stack) -> dict[str, Any]:
    """One of everything in the victim's account (the stack's own), each holding CONTENT or IDENT."""
    email = f"{IDENT}@example.com"

    async def post(path: str, body: Any) -> httpx.Response:
        r = await s.http.post(path, json=body, headers=s.auth())
        assert r.status_code in (200, 201), (path, r.status_code, r.text)
        return r

    template = (await post("/api/v1/messages", {"name": CONTENT, "subject": CONTENT,
                                                "html": f"<p>{CONTENT}</p>",
                                                "text": CONTENT})).json()
    workflow = (await post("/api/v1/workflows", {
        "name": CONTENT, "active": True, "trigger": {"eventTypeKey": IDENT}, "start": "mail",
        "blocks": [{"id": "mail", "type": "email", "templateId": template["id"],
                    "to": "${email}"}]})).json()
    field = (await post("/api/v1/fields", {"name": CONTENT, "type": "text"})).json()
    contact = (await post("/api/v1/contact", {
        "firstName": CONTENT, "externalCustomerId": IDENT,
        "channels": [{"type": "email", "value": email}]})).json()
    await post("/api/v1/orders", {"orders": [{
        "externalOrderId": IDENT, "status": "INITIALIZED", "date": "2026-11-27T10:00:00",
        "totalCost": 1, "currency": "UAH", "email": email, "externalCustomerId": IDENT,
        "firstName": CONTENT}]})
    bulk = (await post("/api/v1/contacts", {"contacts": [{
        "firstName": CONTENT, "channels": [{"type": "email",
                                           "value": f"bulk{IDENT}@example.com"}]}],
        "groupNames": [CONTENT]})).json()
    groups = (await s.http.get("/api/v1/groups", headers=s.auth())).json()
    (group,) = [g["id"] for g in groups if g["name"] == CONTENT and g["type"] == "Static"]
    await post("/api/v1/emails/unsubscribed/add", {"emails": [f"{CONTENT}@example.com"]})
    event = await post("/api/v2/event", {"eventTypeKey": IDENT, "keyValue": email,
                                         "params": [{"name": "email", "value": email},
                                                    {"name": "note", "value": CONTENT}]})

    async def message() -> Any:
        r = await s.http.get("/api/v1/workflow-messages", headers=s.auth())
        found = r.json()["messages"]
        return found[0] if found and found[0]["status"] == "sent" else None

    try:
        sent = await _eventually(message)
    except AssertionError:
        runs = await s.http.get("/api/v1/workflow-runs", headers=s.auth())
        msgs = await s.http.get("/api/v1/workflow-messages", headers=s.auth())
        raise AssertionError(f"no letter: {runs.text[:600]} {msgs.text[:600]}") from None
    send = (await post(f"/api/v1/message/{template['id']}/smartsend", BODIES[
        "/api/v1/message/{message_id}/smartsend"])).json()
    segment = (await post("/api/v1/segments", {"name": CONTENT, "conditions": {
        "contact": {"field": "firstName", "op": "eq", "value": CONTENT}}})).json()

    async def member() -> Any:
        got = await s.http.get(f"/api/v1/segments/{segment['id']}", headers=s.auth())
        one = await s.http.get(f"/api/v1/segments/{segment['id']}/contacts/{contact['id']}",
                               headers=s.auth())
        return got.json()["status"] == "ready" and one.status_code == 200

    await _eventually(member)
    return {"event": int(event.headers["x-event-id"]), "template": template["id"],
            "workflow": workflow["id"], "field": field["id"], "contact": contact["id"],
            "order": IDENT, "run": sent["runId"], "event_type": IDENT, "external": IDENT,
            "email": email, "key_value": email, "account": s.account_id, "key": 1,
            "request": send["results"][0]["requestId"], "session": bulk["asyncSessionId"],
            "segment": segment["id"], "group": group}


_READS = ["/api/v1/messages/{template}", "/api/v1/workflows/{workflow}",
          "/api/v1/fields/{field}", "/api/v1/contact/{contact}", "/api/v1/orders/{order}",
          "/api/v1/events/{event}", "/api/v1/workflow-runs/{run}", "/api/v1/workflows",
          "/api/v1/messages", "/api/v1/fields", "/api/v1/event-types",
          "/api/v1/emails/unsubscribed", "/api/v1/workflow-messages",
          "/api/v1/segments/{segment}", "/api/v1/segments/{segment}/contacts",
          "/api/v1/segments", "/api/v1/groups", "/api/v1/group/{group}/contacts"]


async def _snapshot(s: Stack, ids: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for path in _READS:
        r = await s.http.get(path.format(**ids), headers=s.auth())
        assert r.status_code == 200, (path, r.text)
        out[path] = r.json()
    return out


@pytest.fixture(scope="module")
async def sink(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[MailSink]:
    found = MailSink(directory=tmp_path_factory.mktemp("iso-mail"))
    await found.start()
    yield found
    await found.stop()


@pytest.fixture(scope="module")
async def victim_stack(backends: Backends, sink: MailSink,
                       tmp_path_factory: pytest.TempPathFactory
                       ) -> AsyncIterator[tuple[Stack, Victim]]:
    tmp = tmp_path_factory.mktemp("iso")
    own = private_backends(backends, tmp)
    s = await start_stack(own, tmp, smtp_url=sink.url, rate_limit=0)
    try:
        ids = await _seed(s)
        yield s, Victim(ids=ids, snapshot=await _snapshot(s, ids))
    finally:
        await s.stop()
        own.close()


# --- HTTP ------------------------------------------------------------------------------

ROUTES = route_operations(build_app(Settings(grpc_addr="127.0.0.1:1")).routes)


def _filled(path: str, ids: dict[str, Any]) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: str(_http_id(path, m.group(1), ids)), path)


async def _console(s: Stack, key: str) -> tuple[httpx.AsyncClient, str]:
    client = httpx.AsyncClient(base_url=s.http_url, timeout=30)
    page = await client.get("/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text)
    assert token is not None
    await client.post("/login", data={"api_key": key, "login_token": token.group(1)})
    home = await client.get("/")
    csrf = re.search(r'data-csrf="([^"]+)"', home.text)
    assert csrf is not None, home.text[:300]
    return client, csrf.group(1)


async def test_every_route_with_another_accounts_ids_finds_and_changes_nothing(
        victim_stack: tuple[Stack, Victim]) -> None:
    """The other account's key on every route, with the victim's ids in path and query:
    never a 2xx on the victim's object, no answer holding the victim's data, and the
    victim's objects read back unchanged afterwards."""
    s, victim = victim_stack
    console, csrf = await _console(s, s.other_key)
    tried: list[str] = []
    try:
        for method, path in ROUTES:
            if path == "/logout":
                continue  # ends the thief's own session, nothing of the victim's
            url = _filled(path, victim.ids)
            params = {name: victim.ids[kind] for name, kind in QUERY_IDS.items()}
            params["ids"] = victim.ids["request"]
            if path.startswith("/api/"):
                headers = {"Authorization": basic(s.other_key)}
                client = s.http
            else:
                headers = {"X-CSRF-Token": csrf}
                client = console
            body = BODIES.get(path, {}) if method in ("POST", "PUT") else None
            # GETs twice: bare (nothing of the victim's may show), then with the victim's
            # ids and keys in the query (nothing but the echo of those may show).
            for query in ((None, params) if method == "GET" else (None,)):
                r = await client.request(method, url, headers=headers, json=body, params=query)
                tried.append(f"{method} {r.request.url} -> {r.status_code}")
                assert r.status_code < 500, tried[-1]
                assert CONTENT not in r.text, (tried[-1], r.text[:400])
                if IDENT not in str(r.request.url):
                    assert IDENT not in r.text, (tried[-1], r.text[:400])
                if path in LISTS_BY_ID and r.status_code == 200:
                    assert r.json() == LISTS_BY_ID[path], (tried[-1], r.text[:300])
                elif "{" in path and path != "/console/static/{name}":
                    assert not 200 <= r.status_code < 300, (tried[-1], r.text[:300])
    finally:
        await console.aclose()
    assert await _snapshot(s, victim.ids) == victim.snapshot
    assert len(tried) >= 80
    print("\n".join(tried))


async def test_the_ids_tried_are_the_victims_own(victim_stack: tuple[Stack, Victim]) -> None:
    """The control: with the victim's own key every id route read above answers 200 (and
    a listing by id lists something), and the victim's reads hold CONTENT, so the test
    above tries real objects and would see a leak."""
    s, victim = victim_stack
    reached = 0
    for method, path in ROUTES:
        if method != "GET" or "{" not in path or not path.startswith("/api/v1/") \
                or path.startswith("/api/v1/admin"):
            continue
        r = await s.http.get(_filled(path, victim.ids), headers=s.auth())
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        if path in LISTS_BY_ID:
            assert r.json() != LISTS_BY_ID[path], path
        reached += 1
    assert reached >= 8
    text = orjson.dumps(victim.snapshot).decode()
    for path in _READS:
        if path not in ("/api/v1/workflow-runs/{run}", "/api/v1/event-types",
                        "/api/v1/workflow-messages", "/api/v1/segments/{segment}/contacts"):
            assert CONTENT in orjson.dumps(victim.snapshot[path]).decode(), path
    assert IDENT in text


async def test_admin_routes_refuse_an_accounts_key(victim_stack: tuple[Stack, Victim]) -> None:
    """An account's key (the victim's or another's) opens no admin route."""
    s, victim = victim_stack
    for method, path in ROUTES:
        if path.startswith("/api/v1/admin"):
            for key in (s.api_key, s.other_key):
                r = await s.http.request(method, _filled(path, victim.ids),
                                         headers={"Authorization": basic(key)}, json={})
                assert r.status_code in (401, 403), (method, path, r.status_code)


# --- gRPC ------------------------------------------------------------------------------

def _methods() -> list[MethodDescriptor]:
    found = []
    for module in Path(eventflow.v1.__file__).parent.glob("*_pb2.py"):
        file = importlib.import_module(f"eventflow.v1.{module.stem}").DESCRIPTOR
        for service in file.services_by_name.values():
            found += list(service.methods)
    return sorted(found, key=lambda m: m.full_name)


# Integer fields naming the victim's objects, by the service (and method) that reads them.
def _rpc_id(method: MethodDescriptor, field: str, ids: dict[str, Any]) -> Any:
    service = method.containing_service.name
    if field == "id":
        if service == "ContactService":
            return ids["field"] if "Field" in method.name else ids["contact"]
        return {"EventService": ids["event"], "TemplateService": ids["template"],
                "WorkflowService": ids["workflow"], "ConsoleService": ids["event"],
                "ConsentService": ids["contact"], "SegmentService": ids["segment"]}[service]
    return {"event_id": ids["event"], "contact_id": ids["contact"],
            "workflow_id": ids["workflow"], "run_id": ids["run"],
            "message_id": ids["template"], "account_id": ids["account"],
            "key_id": ids["key"], "before_id": 0, "segment_id": ids["segment"],
            "group_id": ids["group"]}[field]


_STRINGS = {"event_type_key": "event_type", "key_value": "key_value", "email": "email",
            "external_customer_id": "external", "external_order_id": "order"}


# Methods that store what they are sent, in the caller's own account: given the victim's
# keys they would make the thief's own objects named so, which later reads may show.
_MAKERS = ("Generate", "Stream", "Create", "Upsert", "Subscribe", "Add", "Bulk", "Send",
           "Smart", "Update")


def _victims_request(method: MethodDescriptor, ids: dict[str, Any]) -> Any:
    request = GetMessageClass(method.input_type)()
    for field in method.input_type.fields:
        if field.is_repeated:
            if field.name == "request_ids":
                getattr(request, field.name).append(ids["request"])
            continue
        if field.type in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_INT32) and (
                field.name == "id" or field.name.endswith("_id")):
            setattr(request, field.name, _rpc_id(method, field.name, ids))
        elif (field.type == FieldDescriptor.TYPE_STRING and field.name in _STRINGS
              and not method.name.startswith(_MAKERS)):
            setattr(request, field.name, ids[_STRINGS[field.name]])
    return request


METHODS = _methods()
OK_ANSWERS = {grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT,
              grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.PERMISSION_DENIED,
              grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.RESOURCE_EXHAUSTED}


@pytest.mark.parametrize("method", METHODS, ids=[m.full_name for m in METHODS])
async def test_every_rpc_with_another_accounts_ids_finds_nothing(
        victim_stack: tuple[Stack, Victim], method: MethodDescriptor) -> None:
    """Each RPC, with every id and key field set to the victim's, under the other
    account's key: an error, or an answer holding nothing of the victim's."""
    s, victim = victim_stack
    request = _victims_request(method, victim.ids)
    reply_type = GetMessageClass(method.output_type)
    path = f"/{method.containing_service.full_name}/{method.name}"
    meta = (("authorization", basic(s.other_key)),)
    try:
        if method.client_streaming:
            wrapper = GetMessageClass(method.input_type)()
            call = s.channel.stream_stream(path, request_serializer=lambda m: m.SerializeToString(),
                                           response_deserializer=reply_type.FromString)
            replies = [r async for r in call(iter([wrapper]), metadata=meta, timeout=20)]
        elif method.server_streaming:
            call = s.channel.unary_stream(path, request_serializer=lambda m: m.SerializeToString(),
                                          response_deserializer=reply_type.FromString)
            replies = [r async for r in call(request, metadata=meta, timeout=20)]
        else:
            call = s.channel.unary_unary(path, request_serializer=lambda m: m.SerializeToString(),
                                         response_deserializer=reply_type.FromString)
            replies = [await call(request, metadata=meta, timeout=20)]
    except grpc.aio.AioRpcError as exc:
        assert exc.code() in OK_ANSWERS, (path, exc.code(), exc.details())
        assert CONTENT not in (exc.details() or "")
        return
    asked = IDENT.encode() in request.SerializeToString()
    for reply in replies:
        text = MessageToJson(reply)
        assert CONTENT not in text, (path, text[:400])
        assert asked or IDENT not in text, (path, text[:400])
    after = await _snapshot(s, victim.ids)
    assert orjson.dumps(after) == orjson.dumps(victim.snapshot), path
