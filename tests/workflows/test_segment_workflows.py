"""Workflows on segments (issue 13) end to end: events over HTTP, membership on the
workers, runs started by "entered" / "left", a condition on membership, real SMTP into
aiosmtpd; and the checks on save."""

from __future__ import annotations

import secrets
from typing import Any

from server.mail.sink import MailSink
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


async def _async(value: Any) -> Any:
    return value
