"""The simulator, validation errors that name the block, versions, and the Task blocks."""

from __future__ import annotations

from typing import Any

from tests.support import Stack
from tests.workflows.conftest import create_template, create_workflow, eventually, unique_key
from tests.workflows.test_end_to_end import CART_HTML, CART_TEXT, cart_event


def cart_flow(tid: int) -> dict[str, Any]:
    return {"name": "cart", "active": True, "trigger": {"eventTypeKey": "abandoned_cart"},
            "stop": {"eventTypeKeys": ["purchase"]}, "start": "wait", "blocks": [
                {"id": "wait", "type": "timer", "duration": "PT1H", "next": "mail"},
                {"id": "mail", "type": "email", "templateId": tid, "to": "${email}",
                 "jsonParam": "items"}]}


async def simulate(s: Stack, body: dict[str, Any]) -> dict[str, Any]:
    r = await s.http.post("/api/v1/workflows/simulate", json=body, headers=s.auth())
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_simulator_runs_timers_instantly_and_sends_nothing(wf: Stack) -> None:
    """An hour's timer completes on the simulated clock; the letter is reported, not sent."""
    tid = await create_template(wf, name="sim", subject="Cart", html=CART_HTML, text=CART_TEXT)
    out = await simulate(wf, {"definition": cart_flow(tid),
                              "events": [cart_event("a@x.net", "a@x.net")]})
    assert [s["blockId"] for s in out["steps"]] == ["wait", "mail"]
    (msg,) = out["messages"]
    assert msg["to"] == "a@x.net" and "Hair styler" in msg["html"] and "2341" in msg["text"]
    assert out["runs"][0]["status"] == "completed"
    r = await wf.http.get("/api/v1/workflow-messages", headers=wf.auth())
    assert all(m["recipient"] != "a@x.net" for m in r.json()["messages"])


async def test_simulator_stop_event_during_timer(wf: Stack) -> None:
    """A stop event 10 minutes into an hour's timer stops the simulated run: no letter."""
    tid = await create_template(wf, name="sim2", subject="Cart", html=CART_HTML, text="")
    out = await simulate(wf, {"definition": cart_flow(tid), "events": [
        cart_event("b@x.net", "b@x.net"),
        {"eventTypeKey": "purchase", "keyValue": "b@x.net", "params": [], "at": "PT10M"}]})
    assert out["messages"] == []
    assert out["runs"][0]["status"] == "stopped"


async def test_invalid_definition_names_the_block(wf: Stack) -> None:
    """Unknown type, dangling edge, unreachable block, bad ${} are all reported by block."""
    r = await wf.http.post("/api/v1/workflows", headers=wf.auth(), json={
        "name": "bad", "trigger": {"eventTypeKey": "x"}, "start": "a", "blocks": [
            {"id": "a", "type": "email", "templateId": 1, "to": "${email", "next": "nope"},
            {"id": "b", "type": "sms"}]})
    assert r.status_code == 400
    messages = " | ".join(v["message"] for v in r.json()["violations"])
    assert 'block "a": to has a bad reference' in messages
    assert 'block "a": next points to "nope"' in messages
    assert 'block "b": unknown type' in messages
    assert 'block "b" is unreachable' in messages


async def test_update_makes_a_new_version_and_activation_toggles(wf: Stack) -> None:
    """PUT stores version 2; deactivate/activate flip the flag; GET shows the definition."""
    flow = {"name": "v", "active": False, "trigger": {"eventTypeKey": unique_key("v")},
            "start": "end", "blocks": [{"id": "end", "type": "end"}]}
    wid = await create_workflow(wf, flow)
    r = await wf.http.put(f"/api/v1/workflows/{wid}", json={**flow, "name": "v2"},
                          headers=wf.auth())
    assert r.json() == {"id": wid, "version": 2}
    r = await wf.http.post(f"/api/v1/workflows/{wid}/activate", headers=wf.auth())
    assert r.json()["active"] is True and r.json()["name"] == "v2"
    got = (await wf.http.get(f"/api/v1/workflows/{wid}", headers=wf.auth())).json()
    assert got["version"] == 2 and got["blocks"] == flow["blocks"] and got["active"] is True


async def test_create_contact_task_writes_the_contact(wf: Stack) -> None:
    """Task "create contact" with ${email} and ${json} writes the contact."""
    kind = unique_key("create_contact")
    await create_workflow(wf, {"name": "cc", "active": True, "trigger": {"eventTypeKey": kind},
                               "start": "task", "blocks": [
                                   {"id": "task", "type": "create_contact", "email": "${email}",
                                    "json": "${json}"}]})
    email = f"{unique_key('c')}@ukr.net"
    r = await wf.post_event({"eventTypeKey": kind, "keyValue": "site@com.net", "params": [
        {"name": "email", "value": email}, {"name": "phone", "value": "380501234567"},
        {"name": "json", "value": {"firstname": "Olena", "languageCode": "uk"}}]})
    assert r.status_code == 200

    async def contact() -> Any:
        r = await wf.http.get("/api/v1/contacts", params={"email": email}, headers=wf.auth())
        body = r.json() if r.status_code == 200 else []
        found = body if isinstance(body, list) else body.get("contacts", [])
        return [c for c in found if c.get("firstName") == "Olena"]

    (c,) = await eventually(contact)
    assert {"type": "email", "value": email} in c["channels"]


def launch_flow(event_type_key: str, key_value: str, params: Any) -> dict[str, Any]:
    return {"name": "launch", "active": True, "trigger": {"eventTypeKey": "signup"},
            "start": "go", "blocks": [
                {"id": "go", "type": "launch_event", "eventTypeKey": event_type_key,
                 "keyValue": key_value, "params": params}]}


async def test_simulated_launch_event_goes_through_ingest_acceptance(wf: Stack) -> None:
    """A simulated Launch event block refuses what ingest refuses, with ingest's message,
    and simulates an accepted event under the key ingest stores it with."""
    signup = {"eventTypeKey": "signup", "keyValue": "s1", "params": []}
    deep: Any = 1
    # Past the params' 24 levels, within the 32 of a whole simulate body (docs/behaviour.md).
    for _ in range(25):
        deep = [deep]
    for params, field in (([{"name": "a", "value": 1}, {"name": "a", "value": 2}],
                           "params[1].name"),
                          ([{"name": "d", "value": deep}], "params[0].value")):
        bad = {"eventTypeKey": "launched", "keyValue": "k", "params": params}
        answer = (await wf.post_event(bad)).json()
        assert answer["violations"][0]["field"] == field
        out = await simulate(wf, {"definition": launch_flow("launched", "k", params),
                                  "events": [signup]})
        (step,) = out["steps"]
        assert step["status"] == "failed"
        assert step["detail"]["reason"] == \
            f"launch_event: the event is not valid: {answer['error']}"
        assert [e["eventTypeKey"] for e in out["events"]] == ["signup"]
    params = [{"name": "email", "value": "launched@example.com"}, {"name": "n", "value": 1}]
    stored = await wf.post_event({"eventTypeKey": "launched", "params": params})
    read = await wf.http.get(f"/api/v1/events/{stored.headers['X-Event-Id']}",
                             headers=wf.auth())
    out = await simulate(wf, {"definition": launch_flow("launched", "", params),
                              "events": [signup]})
    assert [s["status"] for s in out["steps"]] == ["done"]
    assert out["events"][1]["eventTypeKey"] == "launched"
    assert out["events"][1]["keyValue"] == read.json()["keyValue"] == "launched@example.com"
