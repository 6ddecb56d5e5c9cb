"""Workflows on segments (issue 13) end to end: events over HTTP, membership on the
workers, runs started by "entered" / "left", a condition on membership, real SMTP into
aiosmtpd; and the checks on save."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from server.db.models import utcnow
from server.mail.sink import MailSink
from server.segments.loop import recount_step
from server.segments.membership import Change
from server.workflows.segment_runs import start_segment_runs
from tests.support import Stack
from tests.workflows.conftest import create_template, create_workflow, eventually, runs_of


def to(sink: MailSink, address: str) -> list[Any]:
    return [m for m in sink.received if address in m.rcpt_tos]


async def _segment(s: Stack, conditions: dict[str, Any], key: str | None = None) -> int:
    r = await s.http.post("/api/v1/segments", headers=s.auth(key),
                          json={"name": f"seg {secrets.token_hex(3)}", "conditions": conditions})
    assert r.status_code == 200, r.text
    sid = int(r.json()["id"])

    async def ready() -> bool:
        got = await s.http.get(f"/api/v1/segments/{sid}", headers=s.auth(key))
        return bool(got.json()["status"] == "ready")

    assert await eventually(ready)
    return sid


async def _segmentation_on(s: Stack, key: str) -> None:
    r = await s.http.patch(f"/api/v1/event-types/{key}", headers=s.auth(),
                           json={"segmentation": True})
    assert r.status_code == 200, r.text


async def _event(s: Stack, key: str, email: str, **params: Any) -> int:
    r = await s.post_event({"eventTypeKey": key, "keyValue": email, "params": [
        {"name": "email", "value": email}, *({"name": k, "value": v} for k, v in params.items())]})
    assert r.status_code == 200, r.text
    return int(r.headers["x-event-id"])


async def test_entering_a_segment_starts_a_run_that_sends_a_letter(wf: Stack, sink: MailSink
                                                                   ) -> None:
    """Second `viewed` event -> the contact enters "2 views" -> the workflow on "entered"
    runs with that event's params and contact -> one letter at the SMTP server."""
    key = f"viewed{secrets.token_hex(3)}"
    await _segmentation_on(wf, key)
    sid = await _segment(wf, {"event": {"eventTypeKey": key,
                                        "count": {"op": "gte", "value": 2}}})
    tid = await create_template(wf, name="welcome", subject="You are in",
                                html="<p>Hello $!data.get('product')</p>", text="")
    wid = await create_workflow(wf, {
        "name": "on entering", "active": True,
        "trigger": {"segment": {"id": sid, "change": "entered"}}, "start": "mail",
        "blocks": [{"id": "mail", "type": "email", "templateId": tid, "to": "${email}"}]})
    email = f"enter{secrets.token_hex(3)}@example.com"
    await _event(wf, key, email, product="lamp")
    second = await _event(wf, key, email, product="chair")
    got = await eventually(lambda: _async(to(sink, email)))
    assert len(got) == 1
    assert "chair" in got[0].message.get_body(("html",)).get_content()
    (run,) = await runs_of(wf, wid)
    assert run["eventId"] == second
    member = await wf.http.get(f"/api/v1/segments/{sid}/contacts", headers=wf.auth())
    assert [m["id"] for m in member.json()] == [run["contactId"]]
    await _event(wf, key, email, product="table")  # still a member: no new run
    assert len(await runs_of(wf, wid)) == 1


async def test_leaving_when_the_window_passes_starts_a_left_run(wf: Stack, sink: MailSink
                                                                ) -> None:
    """A PT2S window: the contact leaves when its event ages out, with no event to cause
    it; the "left" workflow writes to the contact's own address."""
    key = f"pinged{secrets.token_hex(3)}"
    await _segmentation_on(wf, key)
    sid = await _segment(wf, {"event": {"eventTypeKey": key, "within": "PT2S"}})
    tid = await create_template(wf, name="bye", subject="We miss you", html="<p>bye</p>",
                                text="bye")
    wid = await create_workflow(wf, {
        "name": "on leaving", "active": True,
        "trigger": {"segment": {"id": sid, "change": "left"}}, "start": "mail",
        "blocks": [{"id": "mail", "type": "email", "templateId": tid}]})
    email = f"leave{secrets.token_hex(3)}@example.com"
    await _event(wf, key, email)
    got = await eventually(lambda: _async(to(sink, email)), timeout=20)
    assert got[0].message["Subject"] == "We miss you"
    (run,) = await runs_of(wf, wid)
    assert run["eventId"] < 0  # no event caused it: the change's id, negated
    r = await wf.http.get(f"/api/v1/segments/{sid}/contacts/{run['contactId']}",
                          headers=wf.auth())
    assert r.status_code == 404


async def test_condition_in_segment_branches(wf: Stack, sink: MailSink) -> None:
    """A condition block {"inSegment": id}: a member goes onTrue, anyone else onFalse."""
    vip = "Vip" + "".join(secrets.choice("abcdefghij") for _ in range(8))
    sid = await _segment(wf, {"contact": {"field": "firstName", "op": "eq", "value": vip}})
    yes = await create_template(wf, name="vip", subject="For members", html="<p>m</p>", text="")
    no = await create_template(wf, name="plain", subject="For everyone", html="<p>e</p>",
                               text="")
    key = f"checkout{secrets.token_hex(3)}"
    await create_workflow(wf, {
        "name": "by segment", "active": True, "trigger": {"eventTypeKey": key},
        "start": "check", "blocks": [
            {"id": "check", "type": "condition", "conditions": [{"inSegment": sid}],
             "onTrue": "vip", "onFalse": "plain"},
            {"id": "vip", "type": "email", "templateId": yes, "to": "${email}"},
            {"id": "plain", "type": "email", "templateId": no, "to": "${email}"}]})
    member = f"member{secrets.token_hex(3)}@example.com"
    other = f"other{secrets.token_hex(3)}@example.com"
    for email, name in ((member, vip), (other, "Someone")):
        r = await wf.http.post("/api/v1/contact", headers=wf.auth(), json={
            "firstName": name, "channels": [{"type": "email", "value": email}]})
        assert r.status_code == 200, r.text
        await _event(wf, key, email)
    got_member = await eventually(lambda: _async(to(sink, member)))
    got_other = await eventually(lambda: _async(to(sink, other)))
    assert got_member[0].message["Subject"] == "For members"
    assert got_other[0].message["Subject"] == "For everyone"


async def test_save_refuses_unknown_and_other_accounts_segments(wf: Stack) -> None:
    """A segment id that is not the account's (missing, or another account's) is a 400
    naming the field, in the trigger and in a condition; nothing is saved."""
    theirs = await _segment(wf, {"contact": {"field": "town", "op": "eq", "value": "Lviv"}},
                            key=wf.other_key)
    before = len((await wf.http.get("/api/v1/workflows", headers=wf.auth())).json())
    for sid in (theirs, 99_999_999):
        r = await wf.http.post("/api/v1/workflows", headers=wf.auth(), json={
            "name": "bad", "trigger": {"segment": {"id": sid}}, "start": "check", "blocks": [
                {"id": "check", "type": "condition",
                 "conditions": {"any": [{"inSegment": sid}]}, "onTrue": "end",
                 "onFalse": "end"},
                {"id": "end", "type": "end"}]})
        assert r.status_code == 400, r.text
        fields = {v["field"]: v["message"] for v in r.json()["violations"]}
        assert fields == {
            "trigger.segment.id": f"no segment with id {sid} in this account",
            "blocks[0].conditions.any[0].inSegment": f"no segment with id {sid} in this account"}
    r = await wf.http.post("/api/v1/workflows", headers=wf.auth(), json={
        "name": "bad shape", "trigger": {"segment": {"id": "x", "change": "joined"}},
        "start": "end", "blocks": [{"id": "end", "type": "end"}]})
    assert r.status_code == 400
    assert {v["field"] for v in r.json()["violations"]} == {"trigger.segment.id",
                                                            "trigger.segment.change"}
    assert len((await wf.http.get("/api/v1/workflows", headers=wf.auth())).json()) == before


def _letters() -> str:
    return "".join(secrets.choice("abcdefghij") for _ in range(8))


async def _contact(s: Stack, email: str, **fields: Any) -> int:
    r = await s.http.post("/api/v1/contact", headers=s.auth(), json={
        **fields, "channels": [{"type": "email", "value": email}]})
    assert r.status_code == 200, r.text
    return int(r.json()["id"])


async def _on(s: Stack, sid: int, change: str, subject: str) -> int:
    tid = await create_template(s, name=subject, subject=subject, html=f"<p>{subject}</p>",
                                text=subject)
    return await create_workflow(s, {
        "name": f"on {change} {sid}", "active": True,
        "trigger": {"segment": {"id": sid, "change": change}}, "start": "mail",
        "blocks": [{"id": "mail", "type": "email", "templateId": tid}]})


async def test_contact_api_changes_start_entered_and_left_runs(wf: Stack, sink: MailSink
                                                               ) -> None:
    """A contact created over the contact API into a field segment enters it and starts
    the "entered" run; edited out of it, it leaves and starts the "left" run; deleted
    while a member, it leaves too. No event is involved."""
    town = "Family" + _letters()
    sid = await _segment(wf, {"contact": {"field": "lastName", "op": "eq", "value": town}})
    entered = await _on(wf, sid, "entered", "Welcome to the family")
    left = await _on(wf, sid, "left", "Left the family")
    email = f"mover{secrets.token_hex(3)}@example.com"
    cid = await _contact(wf, email, lastName=town)
    got = await eventually(lambda: _async(to(sink, email)))
    assert [m.message["Subject"] for m in got] == ["Welcome to the family"]
    (run,) = await runs_of(wf, entered)
    assert run["contactId"] == cid and run["eventId"] < 0
    r = await wf.http.put(f"/api/v1/contact/{cid}", headers=wf.auth(), json={
        "lastName": "Elsewhere", "channels": [{"type": "email", "value": email}]})
    assert r.status_code == 200, r.text
    got = await eventually(lambda: _async(len(to(sink, email)) == 2 and to(sink, email)))
    assert got[1].message["Subject"] == "Left the family"
    assert len(await runs_of(wf, left)) == 1
    other = f"gone{secrets.token_hex(3)}@example.com"
    gone = await _contact(wf, other, lastName=town)
    assert await eventually(lambda: _async(len(to(sink, other)) == 1))
    r = await wf.http.delete(f"/api/v1/contact/{gone}", headers=wf.auth())
    assert r.status_code == 200, r.text
    runs = await eventually(lambda: _left_runs(wf, left, 2))
    assert {r["contactId"] for r in runs} == {cid, gone}


async def _left_runs(s: Stack, workflow_id: int, n: int) -> Any:
    runs = await runs_of(s, workflow_id)
    return runs if len(runs) >= n else None


class _StartRuns:
    """``server.segments.loop.Triggers`` as the worker's, without its Redis wake-up (this
    stack has no worker: its step pumps would be the ones woken)."""

    async def start(self, conn: AsyncConnection, account_id: int,
                    changes: Sequence[Change]) -> list[int]:
        return await start_segment_runs(conn, account_id=account_id, changes=changes)

    async def enqueue(self, started: list[int]) -> None:
        return None


async def test_a_first_count_starts_no_runs_and_an_edit_recount_does(bare: Stack) -> None:
    """Existing contacts counted into a new segment start no "entered" run (they were in
    before the segment existed); after an edit, the contacts the new version takes in
    enter and start it, and those it drops leave and start the "left" one."""
    tag = "Name" + _letters()
    first = await _contact(bare, f"early{secrets.token_hex(3)}@example.com", firstName=tag)
    second = await _contact(bare, f"late{secrets.token_hex(3)}@example.com",
                            firstName=tag + "y")
    doc = {"name": f"named {tag}",
           "conditions": {"contact": {"field": "firstName", "op": "eq", "value": tag}}}
    r = await bare.http.post("/api/v1/segments", headers=bare.auth(), json=doc)
    sid = int(r.json()["id"])
    entered = await _on(bare, sid, "entered", "In")
    left = await _on(bare, sid, "left", "Out")

    async def recount() -> None:
        while await recount_step(bare.engine, now=utcnow(), triggers=_StartRuns()):
            pass

    await recount()
    members = await bare.http.get(f"/api/v1/segments/{sid}/contacts", headers=bare.auth())
    assert [m["id"] for m in members.json()] == [first]
    assert await runs_of(bare, entered) == []
    r = await bare.http.put(f"/api/v1/segments/{sid}", headers=bare.auth(), json={
        **doc, "conditions": {"contact": {"field": "firstName", "op": "eq",
                                          "value": tag + "y"}}})
    assert r.status_code == 200, r.text
    await recount()
    assert [r["contactId"] for r in await runs_of(bare, entered)] == [second]
    assert [r["contactId"] for r in await runs_of(bare, left)] == [first]


async def test_the_simulator_refuses_a_segment_trigger(wf: Stack) -> None:
    """Simulating a workflow on a segment trigger is a 400 naming trigger.segment: the
    simulator replays events and makes no membership changes."""
    sid = await _segment(wf, {"contact": {"field": "town", "op": "eq", "value": "Sim"}})
    r = await wf.http.post("/api/v1/workflows/simulate", headers=wf.auth(), json={
        "definition": {"name": "sim", "trigger": {"segment": {"id": sid}}, "start": "end",
                       "blocks": [{"id": "end", "type": "end"}]},
        "events": [{"eventTypeKey": "x", "keyValue": "a@example.com", "params": []}]})
    assert r.status_code == 400, r.text
    assert [v["field"] for v in r.json()["violations"]] == ["trigger.segment"]


async def _async(value: Any) -> Any:
    return value
