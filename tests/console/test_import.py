"""The console's bulk import over real HTTP: its chunks are read by the same rules as
``POST /api/v1/contacts``, so eSputnik's ``restoreDeleted`` brings a deleted contact back."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.console.support import ConsoleClient
from tests.support import Stack


@pytest.fixture
async def console(stack: Stack) -> AsyncIterator[ConsoleClient]:
    c = ConsoleClient(stack.http_url)
    assert (await c.sign_in(stack.api_key)).status_code == 303
    yield c
    await c.aclose()


async def deleted_contact(stack: Stack, email: str) -> int:
    r = await stack.http.post("/api/v1/contact", headers=stack.auth(), json={
        "firstName": "Old", "channels": [{"type": "email", "value": email}]})
    assert r.status_code == 200, r.text
    contact_id = int(r.json()["id"])
    r = await stack.http.delete(f"/api/v1/contact/{contact_id}", headers=stack.auth())
    assert r.status_code == 200, r.text
    return contact_id


async def chunk(console: ConsoleClient, doc: object, *, csrf: bool = True) -> tuple[int, dict[str, Any]]:
    headers = {"X-CSRF-Token": console.csrf} if csrf else {}
    r = await console.http.post("/contacts/import", json=doc, headers=headers)
    return r.status_code, r.json() if r.headers["content-type"].startswith("application/json") \
        else {}


async def test_restore_deleted_brings_a_deleted_contact_back(stack: Stack,
                                                             console: ConsoleClient) -> None:
    """Without restoreDeleted a deleted contact's row is DELETED and nothing is written; with
    it ticked the contact comes back under its old id with the imported name."""
    email = f"back.{secrets.token_hex(4)}@example.com"
    old_id = await deleted_contact(stack, email)
    row = {"firstName": "Back", "channels": [{"type": "email", "value": email}]}

    status, reply = await chunk(console, {"contacts": [row], "dedupeOn": "email"})
    assert status == 200, reply
    assert reply["successCount"] == 0 and reply["errorCount"] == 1
    (refused,) = reply["errors"]
    assert refused["status"] == "DELETED" and f"id {old_id}" in refused["errors"][0]
    r = await stack.http.get(f"/api/v1/contact/{old_id}", headers=stack.auth())
    assert r.status_code == 404

    status, reply = await chunk(console, {"contacts": [row], "dedupeOn": "email",
                                          "restoreDeleted": True, "groupNames": ["Returned"]})
    assert status == 200 and reply == {"successCount": 1, "errorCount": 0, "errors": []}, reply
    r = await stack.http.get(f"/api/v1/contact/{old_id}", headers=stack.auth())
    assert r.status_code == 200, r.text
    assert r.json()["firstName"] == "Back"
    assert [g["name"] for g in r.json()["groups"]] == ["Returned"]


async def test_bad_import_options_are_400_naming_the_field(stack: Stack,
                                                           console: ConsoleClient) -> None:
    """A non-boolean restoreDeleted, an unknown member or dedupeOn, a chunk over 500 and a
    missing CSRF token are refused, naming what is wrong, and import nothing."""
    email = f"never.{secrets.token_hex(4)}@example.com"
    row = {"firstName": "Never", "channels": [{"type": "email", "value": email}]}
    for doc, field in (({"contacts": [row], "restoreDeleted": "yes"}, "restoreDeleted"),
                       ({"contacts": [row], "restore": True}, "restore"),
                       ({"contacts": [row], "dedupeOn": "shoe size"}, "dedupeOn"),
                       ({"contacts": [row] * 501}, "contacts"),
                       ({"contact": [row]}, "contacts")):
        status, reply = await chunk(console, doc)
        assert status == 400, (doc, reply)
        named = [v["field"] for v in reply.get("violations", [])] + [reply.get("error", "")]
        assert any(field in n for n in named), (doc, reply)
    status, _ = await chunk(console, {"contacts": [row]}, csrf=False)
    assert status == 403
    found = await stack.http.get("/api/v1/contacts", params={"email": email},
                                 headers=stack.auth())
    assert found.json() == [], found.text
