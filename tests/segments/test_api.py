"""Segment definitions over HTTP and gRPC: create, read, list, replace, delete, queries;
bad definitions are 400 / INVALID_ARGUMENT naming the path; other accounts see 404."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import grpc
import orjson
import pytest

from eventflow.v1 import segments_pb2, segments_pb2_grpc
from tests.support import Stack, grpc_violations

VIEWERS = {"name": "viewers", "conditions": {"all": [{"event": {
    "eventTypeKey": "productViewed", "count": {"op": "gte", "value": 3}, "within": "PT24H",
    "params": [{"name": "brand", "op": "eq", "value": "Acme"}]}}]}}


async def create(stack: Stack, doc: Any, key: str | None = None) -> int:
    r = await stack.http.post("/api/v1/segments", json=doc, headers=stack.auth(key))
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"id"}
    return int(r.json()["id"])


async def test_create_get_list_replace_delete(stack: Stack) -> None:
    """A saved segment reads back with its status and progress; replace makes a version."""
    segment_id = await create(stack, VIEWERS)
    r = await stack.http.get(f"/api/v1/segments/{segment_id}", headers=stack.auth())
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["name"] == "viewers" and doc["conditions"] == VIEWERS["conditions"]
    assert doc["timeZone"] == "UTC" and doc["version"] == 1
    assert doc["status"] in ("building", "ready") and {"processed", "total"} <= set(doc)
    listed = (await stack.http.get("/api/v1/segments", headers=stack.auth())).json()
    assert segment_id in [s["id"] for s in listed]
    groups = (await stack.http.get("/api/v1/groups", headers=stack.auth())).json()
    assert {"id": segment_id, "name": "viewers", "type": "Dynamic"} in groups
    r = await stack.http.put(f"/api/v1/segments/{segment_id}", headers=stack.auth(),
                             json={**VIEWERS, "name": "viewers 2", "timeZone": "Europe/Kyiv"})
    assert r.status_code == 200 and r.json() == {"id": segment_id, "version": 2}, r.text
    doc = (await stack.http.get(f"/api/v1/segments/{segment_id}", headers=stack.auth())).json()
    assert doc["name"] == "viewers 2" and doc["timeZone"] == "Europe/Kyiv"
    r = await stack.http.delete(f"/api/v1/segments/{segment_id}", headers=stack.auth())
    assert r.status_code == 200, r.text
    r = await stack.http.get(f"/api/v1/segments/{segment_id}", headers=stack.auth())
    assert r.status_code == 404


async def test_bad_definition_names_the_path_and_saves_nothing(stack: Stack) -> None:
    """A bad definition is a 400 naming each JSON path; no segment is stored."""
    before = len((await stack.http.get("/api/v1/segments", headers=stack.auth())).json())
    bad = {"name": "x", "conditions": {"all": [{"event": {
        "eventTypeKey": "productViewed", "count": {"op": "most", "value": 3},
        "within": "PT24X"}}]}}
    r = await stack.http.post("/api/v1/segments", json=bad, headers=stack.auth())
    assert r.status_code == 400, r.text
    fields = {v["field"] for v in r.json()["violations"]}
    assert {"conditions.all[0].event.count.op", "conditions.all[0].event.within"} <= fields
    r = await stack.http.post("/api/v1/segments", content=b"[1]", headers={
        **stack.auth(), "content-type": "application/json"})
    assert r.status_code == 400
    after = len((await stack.http.get("/api/v1/segments", headers=stack.auth())).json())
    assert after == before


async def test_grpc_violations_name_the_path(stack: Stack) -> None:
    """Over gRPC the same checks are INVALID_ARGUMENT with BadRequest field violations."""
    client = segments_pb2_grpc.SegmentServiceStub(stack.channel)
    doc = {"name": "g", "conditions": {"any": [{"contact": {"field": "town", "op": "eq"}}]}}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.CreateSegment(segments_pb2.CreateSegmentRequest(
            definition_json=orjson.dumps(doc).decode()), metadata=stack.meta())
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert ("conditions.any[0].contact.value", "is required for eq") in \
        grpc_violations(caught.value)
    made = await client.CreateSegment(segments_pb2.CreateSegmentRequest(
        definition_json=orjson.dumps(VIEWERS).decode()), metadata=stack.meta())
    assert made.id > 0 and made.status in ("building", "ready")
    counted = await client.CountSegment(segments_pb2.GetSegmentRequest(id=made.id),
                                        metadata=stack.meta())
    assert counted.count == 0


async def test_other_accounts_segments_are_not_found(stack: Stack) -> None:
    """Another account's segment ids answer 404 on every route and change nothing."""
    segment_id = await create(stack, VIEWERS, key=stack.other_key)
    auth = stack.auth()
    for path in (f"/api/v1/segments/{segment_id}", f"/api/v1/segments/{segment_id}/contacts",
                 f"/api/v1/segments/{segment_id}/contacts/1",
                 f"/api/v1/segments/{segment_id}/count", f"/api/v1/group/{segment_id}/contacts"):
        r = await stack.http.get(path, headers=auth)
        assert r.status_code == 404, (path, r.text)
    r = await stack.http.put(f"/api/v1/segments/{segment_id}", json=VIEWERS, headers=auth)
    assert r.status_code == 404
    r = await stack.http.delete(f"/api/v1/segments/{segment_id}", headers=auth)
    assert r.status_code == 404
    listed = (await stack.http.get("/api/v1/segments", headers=auth)).json()
    assert segment_id not in [s["id"] for s in listed]
    r = await stack.http.get(f"/api/v1/segments/{segment_id}", headers=stack.auth(stack.other_key))
    assert r.status_code == 200 and r.json()["version"] == 1


async def test_query_routes_check_their_parameters(stack: Stack) -> None:
    """Paging is eSputnik's (startindex, maxrows), unknown parameters and bad ids are 400."""
    segment_id = await create(stack, VIEWERS)
    auth = stack.auth()
    r = await stack.http.get(f"/api/v1/segments/{segment_id}/contacts", headers=auth,
                             params={"startindex": 1, "maxrows": 10})
    assert r.status_code == 200 and r.json() == [] and r.headers["TotalCount"] == "0"
    r = await stack.http.get(f"/api/v1/group/{segment_id}/contacts", headers=auth,
                             params={"maxrows": 501})
    assert r.status_code == 400 and "maxrows" in r.text
    r = await stack.http.get(f"/api/v1/segments/{segment_id}/contacts", headers=auth,
                             params={"limit": 5})
    assert r.status_code == 400 and "limit" in r.text
    r = await stack.http.get("/api/v1/segments/abc", headers=auth)
    assert r.status_code == 400
    r = await stack.http.get(f"/api/v1/segments/{segment_id}/count", headers=auth)
    assert r.status_code == 200 and r.json()["count"] == 0
    r = await stack.http.get(f"/api/v1/segments/{segment_id}/contacts/99999999", headers=auth)
    assert r.status_code == 404


async def wait_for(check: Any, timeout: float = 15.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.1)


async def test_events_make_members_and_the_window_lets_them_go(stack: Stack) -> None:
    """Ingested events put their contact in the segment (list, one, count, group routes),
    and a PT3S window lets it leave once the events age out; the build ends ready."""
    email = f"seg{secrets.token_hex(3)}@example.com"
    doc = {"name": "quick viewers", "conditions": {"all": [{"event": {
        "eventTypeKey": "quickView", "count": {"op": "gte", "value": 2}, "within": "PT3S",
        "params": [{"name": "price", "op": "gt", "value": 100}]}}]}}
    segment_id = await create(stack, doc)
    auth = stack.auth()
    r = await stack.http.patch("/api/v1/event-types/quickView", headers=auth,
                               json={"segmentation": True})
    assert r.status_code == 200, r.text

    async def ready() -> bool:
        r = await stack.http.get(f"/api/v1/segments/{segment_id}", headers=auth)
        return bool(r.json()["status"] == "ready" and r.json()["processed"] == r.json()["total"])

    assert await wait_for(ready)
    for price in ("150", 120):
        r = await stack.post_event({"eventTypeKey": "quickView", "keyValue": email,
                                    "params": [{"name": "email", "value": email},
                                               {"name": "price", "value": price}]})
        assert r.status_code == 200, r.text

    async def members() -> list[dict[str, Any]]:
        r = await stack.http.get(f"/api/v1/segments/{segment_id}/contacts", headers=auth)
        return list(r.json())

    found = await wait_for(members)
    assert [m["email"] for m in found] == [email]
    contact_id = found[0]["id"]
    r = await stack.http.get(f"/api/v1/segments/{segment_id}/contacts/{contact_id}",
                             headers=auth)
    assert r.status_code == 200 and r.json()["email"] == email
    r = await stack.http.get(f"/api/v1/segments/{segment_id}/count", headers=auth)
    assert r.json() == {"count": 1, "status": "ready"}
    r = await stack.http.get(f"/api/v1/group/{segment_id}/contacts", headers=auth,
                             params={"startindex": 1, "maxrows": 5})
    (member,) = r.json()  # eSputnik's contact shape (docs/compatibility.md)
    assert member["id"] == contact_id and r.headers["TotalCount"] == "1"
    assert member["channels"] == [{"type": "email", "value": email}]

    async def gone() -> bool:
        r = await stack.http.get(f"/api/v1/segments/{segment_id}/contacts/{contact_id}",
                                 headers=auth)
        return r.status_code == 404

    assert await wait_for(gone, timeout=10)
    r = await stack.http.get(f"/api/v1/segments/{segment_id}/count", headers=auth)
    assert r.json()["count"] == 0


async def test_contact_changes_move_members_at_once(stack: Stack) -> None:
    """Creating, changing and deleting a contact through the contact API updates field
    segments in the same transaction: the answer already shows the membership."""
    name = "Ivan" + "".join(secrets.choice("abcdefgh") for _ in range(6))
    segment_id = await create(stack, {"name": "by name", "conditions": {"contact": {
        "field": "firstName", "op": "eq", "value": name}}})
    auth = stack.auth()
    email = f"named{secrets.token_hex(3)}@example.com"
    channels = [{"type": "email", "value": email}]
    r = await stack.http.post("/api/v1/contact", headers=auth,
                              json={"firstName": name, "channels": channels})
    assert r.status_code == 200, r.text
    contact_id = r.json()["id"]
    path = f"/api/v1/segments/{segment_id}/contacts/{contact_id}"
    assert (await stack.http.get(path, headers=auth)).status_code == 200
    r = await stack.http.put(f"/api/v1/contact/{contact_id}", headers=auth,
                             json={"firstName": "Petro", "channels": channels})
    assert r.status_code == 200, r.text
    assert (await stack.http.get(path, headers=auth)).status_code == 404
    r = await stack.http.put(f"/api/v1/contact/{contact_id}", headers=auth,
                             json={"firstName": name, "channels": channels})
    assert (await stack.http.get(path, headers=auth)).status_code == 200
    r = await stack.http.delete(f"/api/v1/contact/{contact_id}", headers=auth)
    assert r.status_code == 200, r.text
    r = await stack.http.get(f"/api/v1/segments/{segment_id}/count", headers=auth)
    assert r.json()["count"] == 0


async def test_the_segmentation_switch_over_http(stack: Stack) -> None:
    """An event of a type with segmentation off is stored and processed but makes no
    member; switched on (PATCH), the next event does; switched off, the recount takes
    the member out again."""
    email = f"switch{secrets.token_hex(3)}@example.com"
    key = f"optIn{secrets.token_hex(3)}"
    auth = stack.auth()
    segment_id = await create(stack, {"name": "opted in", "conditions": {"event": {
        "eventTypeKey": key}}})

    async def send() -> None:
        r = await stack.post_event({"eventTypeKey": key, "keyValue": email,
                                    "params": [{"name": "email", "value": email}]})
        assert r.status_code == 200, r.text

    async def contact_id() -> int | None:
        r = await stack.http.get("/api/v1/contacts", headers=auth, params={"email": email})
        return int(r.json()[0]["id"]) if r.status_code == 200 and r.json() else None

    async def member(cid: int) -> bool:
        r = await stack.http.get(f"/api/v1/segments/{segment_id}/contacts/{cid}", headers=auth)
        return r.status_code == 200

    await send()
    cid = await wait_for(contact_id)  # the worker processed it (it made the contact)
    assert cid is not None
    await asyncio.sleep(0.5)
    assert not await member(cid)
    r = await stack.http.patch(f"/api/v1/event-types/{key}", headers=auth,
                               json={"segmentation": True})
    assert r.status_code == 200 and r.json()["segmentation"] is True, r.text
    await send()
    assert await wait_for(lambda: member(cid))
    r = await stack.http.patch(f"/api/v1/event-types/{key}", headers=auth,
                               json={"segmentation": False})
    assert r.status_code == 200, r.text

    async def left() -> bool:
        return not await member(cid)

    assert await wait_for(left)
