"""Contact writes outside the contact API and the event batch (issue 13): a workflow's
contact block and the subscription form re-evaluate membership in their own transaction
and start the segment-triggered runs; a deleted or erased contact leaves its segments."""

from __future__ import annotations

import secrets
from typing import Any

import orjson

from tests.support import Stack
from tests.workflows.conftest import create_workflow, db_rows, eventually, runs_of


def _letters() -> str:
    return "".join(secrets.choice("abcdefghij") for _ in range(8))


async def _segment(s: Stack, field: str, value: str) -> int:
    r = await s.http.post("/api/v1/segments", headers=s.auth(), json={
        "name": f"seg {secrets.token_hex(3)}",
        "conditions": {"contact": {"field": field, "op": "eq", "value": value}}})
    assert r.status_code == 200, r.text
    return int(r.json()["id"])


async def _on(s: Stack, sid: int, change: str) -> int:
    return await create_workflow(s, {
        "name": f"on {change} {sid}", "active": True,
        "trigger": {"segment": {"id": sid, "change": change}}, "start": "end",
        "blocks": [{"id": "end", "type": "end"}]})


async def _is_member(s: Stack, sid: int, contact_id: int) -> bool:
    r = await s.http.get(f"/api/v1/segments/{sid}/contacts/{contact_id}", headers=s.auth())
    assert r.status_code in (200, 404), r.text
    return r.status_code == 200


async def _changes(s: Stack, sid: int) -> list[tuple[int, str, str]]:
    rows = await db_rows(s, "SELECT contact_id, change, reason FROM segment_changes "
                         "WHERE segment_id = :sid ORDER BY id", sid=sid)
    return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]


async def _completed(s: Stack, workflow_id: int) -> Any:
    runs = await runs_of(s, workflow_id)
    return runs if runs and all(r["status"] == "completed" for r in runs) else None


async def test_a_workflow_contact_block_moves_the_contact_into_a_segment(wf: Stack) -> None:
    """An update_contact block setting firstName: the contact is a member as soon as the
    step is recorded, and the "entered" workflow has its run, caused by the workflow."""
    name = "Step" + _letters()
    sid = await _segment(wf, "firstName", name)

    async def ready() -> bool:
        got = await wf.http.get(f"/api/v1/segments/{sid}", headers=wf.auth())
        return bool(got.json()["status"] == "ready")

    assert await eventually(ready)
    entered = await _on(wf, sid, "entered")
    key = f"named{secrets.token_hex(3)}"
    writer = await create_workflow(wf, {
        "name": "names the contact", "active": True, "trigger": {"eventTypeKey": key},
        "start": "set", "blocks": [
            {"id": "set", "type": "update_contact", "email": "${email}",
             "json": orjson.dumps({"firstname": name}).decode()}]})
    email = f"step{secrets.token_hex(3)}@example.com"
    r = await wf.post_event({"eventTypeKey": key, "keyValue": email,
                             "params": [{"name": "email", "value": email}]})
    assert r.status_code == 200, r.text
    (run,) = await eventually(lambda: _completed(wf, writer))
    cid = int(run["contactId"])
    # The step's transaction made the change: no event or recount is awaited here.
    assert await _is_member(wf, sid, cid)
    assert await _changes(wf, sid) == [(cid, "entered", "contact changed (workflow)")]
    (started,) = await runs_of(wf, entered)
    assert started["contactId"] == cid and started["eventId"] < 0


async def test_the_subscription_form_moves_the_contact_in_and_out(bare: Stack) -> None:
    """A subscription form naming the segment's lastName makes a member in its own call
    (no worker runs here) and starts the "entered" run; a second form for the same
    address with another name takes it out and starts the "left" run."""
    family = "Form" + _letters()
    sid = await _segment(bare, "lastName", family)
    entered, left = await _on(bare, sid, "entered"), await _on(bare, sid, "left")
    email = f"form{secrets.token_hex(3)}@example.com"

    async def subscribe(last_name: str) -> int:
        r = await bare.http.post("/api/v1/contact/subscribe", headers=bare.auth(), json={
            "contact": {"lastName": last_name,
                        "channels": [{"type": "email", "value": email}]}})
        assert r.status_code == 200, r.text
        return int(r.json()["id"])

    cid = await subscribe(family)
    assert await _is_member(bare, sid, cid)
    assert [r["contactId"] for r in await runs_of(bare, entered)] == [cid]
    assert await subscribe("Elsewhere") == cid
    assert not await _is_member(bare, sid, cid)
    assert [r["contactId"] for r in await runs_of(bare, left)] == [cid]
    reason = "contact changed (subscription form)"
    assert await _changes(bare, sid) == [(cid, "entered", reason), (cid, "left", reason)]


async def test_deleted_and_erased_contacts_leave_their_segments(bare: Stack) -> None:
    """Deleting by externalCustomerId, and erasing, take the contact out of every segment
    it was in, recorded as "contact deleted", with no due check left behind."""
    town = "Gone" + _letters()
    sid = await _segment(bare, "town", town)
    ids = []
    for n in range(2):
        r = await bare.http.post("/api/v1/contact", headers=bare.auth(), json={
            "externalCustomerId": f"gone-{town}-{n}", "address": {"town": town},
            "channels": [{"type": "email", "value": f"gone{n}{town}@example.com"}]})
        assert r.status_code == 200, r.text
        ids.append(int(r.json()["id"]))
        assert await _is_member(bare, sid, ids[-1])
    for n, erase in enumerate(("false", "true")):
        r = await bare.http.delete("/api/v1/contact", headers=bare.auth(), params={
            "externalCustomerId": f"gone-{town}-{n}", "erase": erase})
        assert r.status_code == 200, r.text
        assert not await _is_member(bare, sid, ids[n])
    left = [c for c in await _changes(bare, sid) if c[1] == "left"]
    assert left == [(ids[0], "left", "contact deleted"), (ids[1], "left", "contact deleted")]
    assert await db_rows(bare, "SELECT 1 FROM segment_due WHERE segment_id = :sid", sid=sid) == []
