"""Finding 8 (parts): a charset other than UTF-8 is 415, and a workflow naming a template
its account does not have is refused when it is saved."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.support import Stack

EVENT = {"eventTypeKey": "charset_check", "keyValue": "k@example.com", "params": []}


@pytest.mark.parametrize("charset", ["utf-16", "UTF-16LE", "latin1", '"iso-8859-1"'])
async def test_charset_other_than_utf8_is_415(stack: Stack, charset: str) -> None:
    """A JSON body declared in another charset is 415 (it was read as UTF-8) and stores
    nothing."""
    before = await stack.count_events()
    body = orjson.dumps(EVENT).decode().encode("utf-16" if "16" in charset else "latin1")
    r = await stack.http.post("/api/v2/event", content=body, headers={
        **stack.auth(), "Content-Type": f"application/json; charset={charset}"})
    assert r.status_code == 415, r.text
    assert "UTF-8" in r.json()["error"]
    assert await stack.count_events() == before


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", '"utf-8"', "utf8"])
async def test_utf8_charset_is_accepted(stack: Stack, charset: str) -> None:
    """charset=utf-8, in any spelling, is what the body is read as: 200."""
    r = await stack.http.post("/api/v2/event", content=orjson.dumps(EVENT), headers={
        **stack.auth(), "Content-Type": f"application/json; charset={charset}"})
    assert r.status_code == 200, r.text


def _flow(template_id: int) -> dict[str, Any]:
    return {"name": "uses a template", "active": False,
            "trigger": {"eventTypeKey": "tpl_check"}, "start": "wait",
            "blocks": [{"id": "wait", "type": "timer", "duration": "PT1M", "next": "mail"},
                       {"id": "mail", "type": "email", "templateId": template_id,
                        "to": "${email}"}]}


async def _template(stack: Stack, key: str) -> int:
    r = await stack.http.post("/api/v1/messages", headers=stack.auth(key), json={
        "name": "t", "subject": "s", "html": "<p>h</p>", "text": "t"})
    assert r.status_code == 200, r.text
    return int(r.json()["id"])


async def test_workflow_naming_another_accounts_template_is_refused(stack: Stack) -> None:
    """Creating or updating a workflow with another account's (or no) template is 400
    naming blocks[1].templateId; with its own template it is saved."""
    theirs = await _template(stack, stack.other_key)
    ours = await _template(stack, stack.api_key)
    listed = await stack.http.get("/api/v1/workflows", headers=stack.auth())
    for template_id in (theirs, 999_999):
        r = await stack.http.post("/api/v1/workflows", headers=stack.auth(),
                                  json=_flow(template_id))
        assert r.status_code == 400, r.text
        assert r.json()["violations"] == [{"field": "blocks[1].templateId", "message":
                                           f"no message template with id {template_id} "
                                           "in this account"}]
    after = await stack.http.get("/api/v1/workflows", headers=stack.auth())
    assert after.json() == listed.json()
    r = await stack.http.post("/api/v1/workflows", headers=stack.auth(), json=_flow(ours))
    assert r.status_code == 200, r.text
    r = await stack.http.put(f"/api/v1/workflows/{r.json()['id']}", headers=stack.auth(),
                             json=_flow(theirs))
    assert r.status_code == 400 and "templateId" in r.text, r.text
