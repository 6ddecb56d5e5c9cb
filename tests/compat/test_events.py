"""Events as the public clients send them: the PHP client's v1 ``parameters``, v1 values
that are not text, unknown members, and the stored body read back as it was sent."""

from __future__ import annotations

import secrets
from typing import Any

from tests.compat.conftest import dumps, replay
from tests.compat.helpers import events_of, eventually, scalar, unique_email
from tests.support import Stack


async def read_event(s: Stack, event_id: int | str) -> dict[str, Any]:
    r = await replay(s, "GET", f"/api/v1/events/{event_id}", content_type=None)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_php_v1_parameters_are_stored_as_params(compat: Stack) -> None:
    """The PHP client's {"eventTypeKey", "keyValue", "parameters": [...]} to /api/v1/event:
    200, and the event is stored with those params (it used to lose them)."""
    key = f"php-{secrets.token_hex(3)}"
    body = ('{"eventTypeKey":"phpOrder","keyValue":"' + key + '","parameters":['
            '{"name":"orderId","value":"42"},{"name":"total","value":"99.50"}]}')
    r = await replay(compat, "POST", "/api/v1/event", body)
    assert r.status_code == 200, r.text
    stored = await read_event(compat, r.headers["X-Event-Id"])
    assert stored["body"] == {"eventTypeKey": "phpOrder", "keyValue": key, "params": [
        {"name": "orderId", "value": "42"}, {"name": "total", "value": "99.50"}]}
    (listed,) = await events_of(compat, "phpOrder", key)
    assert listed["params"][0] == {"name": "orderId", "value": "42"}


async def test_v1_values_are_text_and_structures_refused(compat: Stack) -> None:
    """v1 reads a number or boolean as its text and refuses an object or array (send it
    escaped, or to v2), naming the value; a refused event stores nothing."""
    key = f"v1-{secrets.token_hex(3)}"
    body = {"eventTypeKey": "v1Types", "keyValue": key, "params": [
        {"name": "n", "value": 5}, {"name": "d", "value": 2.5}, {"name": "b", "value": True},
        {"name": "none", "value": None}, {"name": "s", "value": "{\"a\":1}"}]}
    r = await replay(compat, "POST", "/api/v1/event/", dumps(body))
    assert r.status_code == 200, r.text
    stored = await read_event(compat, r.headers["X-Event-Id"])
    assert [p["value"] for p in stored["body"]["params"]] == ["5", "2.5", "true", None,
                                                              "{\"a\":1}"]
    bad = {"eventTypeKey": "v1Types", "keyValue": key + "x", "params": [
        {"name": "ok", "value": "x"}, {"name": "items", "value": [{"id": 1}]},
        {"name": "o", "value": {"a": 1}}]}
    r = await replay(compat, "POST", "/api/v1/event", dumps(bad))
    assert r.status_code == 400, r.text
    assert [v["field"] for v in r.json()["violations"]] == ["params[1].value", "params[2].value"]
    assert await events_of(compat, "v1Types", key + "x") == []
    v2 = await replay(compat, "POST", "/api/v2/event", dumps({**bad, "keyValue": key + "y"}))
    assert v2.status_code == 200, v2.text


async def test_unknown_event_members_are_400s_naming_them(compat: Stack) -> None:
    """A member an event does not have is refused by name on v2 and v1 (nothing stored);
    params and parameters together are refused too."""
    key = f"unk-{secrets.token_hex(3)}"
    cases = [
        ("/api/v2/event", {"eventTypeKey": "unk", "keyValue": key, "params": [],
                           "parameters": []}, ["parameters"]),
        ("/api/v2/event", {"eventTypeKey": "unk", "keyValue": key, "param": [{"name": "a",
                                                                            "value": 1}]},
         ["param"]),
        ("/api/v1/event", {"eventTypeKey": "unk", "keyValue": key, "params": [],
                           "parameters": []}, ["parameters"]),
        ("/api/v1/event", {"eventTypeKey": "unk", "keyValue": key, "contactId": 5}, ["contactId"]),
    ]
    for path, body, fields in cases:
        r = await replay(compat, "POST", path, dumps(body))
        assert r.status_code == 400, (path, body, r.text)
        assert [v["field"] for v in r.json()["violations"]] == fields, r.json()
    assert await events_of(compat, "unk", key) == []


async def test_stored_body_is_as_received_and_the_contact_its_own_field(
        compat: Stack) -> None:
    """Once the worker has linked the event to its contact, GET /api/v1/events/{id}
    answers contactId beside the body, and the body is exactly what was sent."""
    email = unique_email("asis")
    sent = {"eventTypeKey": "asReceived", "keyValue": email,
            "params": [{"name": "email", "value": email}, {"name": "n", "value": 1.5},
                       {"name": "items", "value": [{"id": 1, "tags": ["a"]}]}]}
    r = await replay(compat, "POST", "/api/v2/event", dumps(sent))
    assert r.status_code == 200, r.text
    event_id = r.headers["X-Event-Id"]

    async def linked() -> Any:
        return (await read_event(compat, event_id)).get("contactId")

    contact_id = await eventually(linked)
    stored = await read_event(compat, event_id)
    assert stored["body"] == sent and "contactId" not in stored["body"]
    assert stored["contactId"] == contact_id
    raw = await scalar(compat, "SELECT body FROM events WHERE id = :i", i=int(event_id))
    assert "contactId" not in raw
