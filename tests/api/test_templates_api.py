"""Preview and stored templates over the gateway (real HTTP) and TemplateService (gRPC)."""

from __future__ import annotations

import json

import grpc
import pytest

from eventflow.v1 import templates_pb2, templates_pb2_grpc
from tests.core.seed import ABANDONED_CART, PASSWORD_RECOVERY
from tests.support import Stack

SEED_LOOP = """#foreach($!item in $!data.get('array'))
$!item.get('name')
$!item.get('price')
#end"""


async def test_preview_seed_loop_with_event_and_json_param(stack: Stack) -> None:
    """The seed's loop renders both items when the event's `items` param is the data."""
    r = await stack.http.post("/api/v1/messages/preview", headers=stack.auth(), json={
        "template": SEED_LOOP, "event": ABANDONED_CART, "jsonParam": "items"})
    assert r.status_code == 200, r.text
    assert r.json() == {"rendered": "Hair styler\n341\nMagnolia Nobile Парфумована вода\n2341\n"}


async def test_preview_with_context_variables(stack: Stack) -> None:
    """Each key of `context` is a variable; the password letter uses data.get('password')."""
    params = {p["name"]: p["value"] for p in PASSWORD_RECOVERY["params"]}
    r = await stack.http.post("/api/v1/messages/preview", headers=stack.auth(), json={
        "template": "Your password: $!data.get('password')", "context": {"data": params}})
    assert r.json() == {"rendered": "Your password: 12345678"}


async def test_preview_reports_syntax_error_with_line_and_column(stack: Stack) -> None:
    """A broken directive answers 422 with the line and column."""
    r = await stack.http.post("/api/v1/messages/preview", headers=stack.auth(), json={
        "template": "Hello\n#foreach($i in )\nx\n#end", "context": {}})
    assert r.status_code == 422, r.text
    doc = r.json()
    assert doc["line"] == 2 and doc["column"] >= 1 and doc["error"]


async def test_preview_index_out_of_range_is_an_error(stack: Stack) -> None:
    """`.get(5)` on a two-item list is an error for the message, as in eSputnik."""
    r = await stack.http.post("/api/v1/messages/preview", headers=stack.auth(), json={
        "template": "$!data.get('array').get(5).get('name')", "event": ABANDONED_CART,
        "jsonParam": "items"})
    assert r.status_code == 422 and r.json()["line"] == 1


async def test_preview_wrong_format_for_unparsable_json(stack: Stack) -> None:
    """JSON data text that does not parse is reported as "Wrong Format"."""
    body = {"eventTypeKey": "v1", "keyValue": "k",
            "params": [{"name": "items", "value": "{\"array\": [1, 2"}]}
    r = await stack.http.post("/api/v1/messages/preview", headers=stack.auth(), json={
        "template": "$data", "event": body, "jsonParam": "items"})
    assert r.status_code == 422 and "Wrong Format" in r.json()["error"]
    r = await stack.http.post("/api/v1/messages/preview", headers=stack.auth(), json={
        "template": "$data", "context": "{not json"})
    assert r.status_code == 422 and r.json()["kind"] == "wrong_format"


async def test_stored_template_create_list_get(stack: Stack) -> None:
    """POST /api/v1/messages answers an id; the template reads back from list and get."""
    body = {"name": "Abandoned cart", "subject": "You left $!data.get('array').size() items",
            "html": "<ul>" + SEED_LOOP + "</ul>", "text": SEED_LOOP}
    r = await stack.http.post("/api/v1/messages", headers=stack.auth(), json=body)
    assert r.status_code == 200, r.text
    template_id = r.json()["id"]
    got = (await stack.http.get(f"/api/v1/messages/{template_id}", headers=stack.auth())).json()
    assert {k: got[k] for k in body} == body
    listed = (await stack.http.get("/api/v1/messages", headers=stack.auth())).json()
    assert template_id in [t["id"] for t in listed]
    other = await stack.http.get(f"/api/v1/messages/{template_id}", headers=stack.auth(stack.other_key))
    assert other.status_code == 404


async def test_saving_a_broken_template_is_refused_with_position(stack: Stack) -> None:
    """A syntax error in any part refuses the save with field, line and column; nothing stored."""
    before = (await stack.http.get("/api/v1/messages", headers=stack.auth())).json()
    r = await stack.http.post("/api/v1/messages", headers=stack.auth(), json={
        "name": "broken", "subject": "ok", "html": "<p>\n\n#if($x</p>", "text": "t"})
    assert r.status_code == 422, r.text
    doc = r.json()
    assert doc["field"] == "html" and doc["line"] == 3 and doc["column"] > 0
    after = (await stack.http.get("/api/v1/messages", headers=stack.auth())).json()
    assert after == before


async def test_saving_without_name_or_body_is_400(stack: Stack) -> None:
    """Name and at least one body are required."""
    r = await stack.http.post("/api/v1/messages", headers=stack.auth(), json={"subject": "s"})
    assert r.status_code == 400
    assert {v["field"] for v in r.json()["violations"]} == {"name", "html"}


async def test_grpc_render_and_template_syntax_status(stack: Stack) -> None:
    """Over gRPC a render error is data in the answer; a bad save is INVALID_ARGUMENT."""
    stub = templates_pb2_grpc.TemplateServiceStub(stack.channel)
    req = templates_pb2.RenderTemplateRequest(template="$!data.get('password')",
                                              event_json=json.dumps(PASSWORD_RECOVERY))
    reply = await stub.RenderTemplate(req, metadata=stack.meta())
    assert reply.rendered == "12345678" and not reply.HasField("error")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CreateTemplate(templates_pb2.CreateTemplateRequest(
            name="x", html="#foreach($i in )#end"), metadata=stack.meta())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_put_replaces_a_template_in_place(stack: Stack) -> None:
    """PUT /api/v1/messages/{id} keeps the id and creation time and answers the new text;
    another account's PUT is 404 and changes nothing; a broken or incomplete body is refused
    with the field and leaves the stored text as it was."""
    body = {"name": "Cart", "subject": "s1", "html": "<p>one</p>", "text": "one"}
    made = (await stack.http.post("/api/v1/messages", headers=stack.auth(), json=body)).json()
    url = f"/api/v1/messages/{made['id']}"
    first = (await stack.http.get(url, headers=stack.auth())).json()
    new = {"name": "Cart v2", "subject": "You left $!data.get('array').size() items",
           "html": "<ul>" + SEED_LOOP + "</ul>", "text": SEED_LOOP}
    r = await stack.http.put(url, headers=stack.auth(), json=new)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["id"] == made["id"] and got["createdAt"] == first["createdAt"]
    assert {k: got[k] for k in new} == new
    assert (await stack.http.get(url, headers=stack.auth())).json() == got
    listed = (await stack.http.get("/api/v1/messages", headers=stack.auth())).json()
    assert [t for t in listed if t["id"] == made["id"]] == [got]

    other = await stack.http.put(url, headers=stack.auth(stack.other_key), json=body)
    assert other.status_code == 404, other.text
    broken = await stack.http.put(url, headers=stack.auth(), json={**new, "text": "#if($x"})
    assert broken.status_code == 422 and broken.json()["field"] == "text", broken.text
    empty = await stack.http.put(url, headers=stack.auth(), json={"subject": 5})
    assert empty.status_code == 400
    assert {v["field"] for v in empty.json()["violations"]} == {"subject"}
    unnamed = await stack.http.put(url, headers=stack.auth(), json={"html": "<p>x</p>"})
    assert unnamed.status_code == 400 and unnamed.json()["violations"][0]["field"] == "name"
    assert (await stack.http.get(url, headers=stack.auth())).json() == got
    missing = await stack.http.put("/api/v1/messages/999999999", headers=stack.auth(), json=new)
    assert missing.status_code == 404


async def test_grpc_update_template(stack: Stack) -> None:
    """UpdateTemplate answers the stored template; an unknown id is NOT_FOUND; a syntax
    error is INVALID_ARGUMENT and the old text stays."""
    stub = templates_pb2_grpc.TemplateServiceStub(stack.channel)
    made = await stub.CreateTemplate(templates_pb2.CreateTemplateRequest(
        name="pw", html="old"), metadata=stack.meta())
    updated = await stub.UpdateTemplate(templates_pb2.UpdateTemplateRequest(
        id=made.id, name="pw", subject="Password", html="$!data.get('password')"),
        metadata=stack.meta())
    assert (updated.id, updated.html, updated.subject) == (made.id, "$!data.get('password')",
                                                          "Password")
    assert updated.created_at == made.created_at
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.UpdateTemplate(templates_pb2.UpdateTemplateRequest(
            id=made.id, name="pw", html="#foreach($i in )#end"), metadata=stack.meta())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.UpdateTemplate(templates_pb2.UpdateTemplateRequest(
            id=made.id, name="pw", html="x"), metadata=stack.meta(stack.other_key))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    got = await stub.GetTemplate(templates_pb2.GetTemplateRequest(id=made.id),
                                 metadata=stack.meta())
    assert got.html == "$!data.get('password')"
