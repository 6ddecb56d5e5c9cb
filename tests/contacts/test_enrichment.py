"""Identity enrichment through the real stack (gateway, gRPC server, ingest writer, arq worker)
on SQLite or PostgreSQL: an event attaches the identifiers its contact lacks, whatever came
before it, and a conflict is kept on the event and changes nothing."""

from __future__ import annotations

import asyncio
import copy
import secrets
import time
from typing import Any

from sqlalchemy import text

from server.accounts import create_account
from tests.core.seed import ABANDONED_CART, CREATE_CONTACT
from tests.support import Stack

SEED_PHONE = "+380501234567"


async def fresh_account(stack: Stack) -> str:
    """The API key of a new account: the seed's identifiers are unused there."""
    _account_id, key = await create_account(stack.engine, name=f"fresh-{secrets.token_hex(3)}")
    return key


async def send(stack: Stack, key: str, body: dict[str, Any]) -> int:
    r = await stack.post_event(body, key=key)
    assert r.status_code == 200, r.text
    return int(r.headers["X-Event-Id"])


async def processed(stack: Stack, key: str, event_id: int, *, timeout: float = 30.0
                    ) -> dict[str, Any]:
    """``GET /api/v1/events/{id}`` once the worker has handled the event."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with stack.engine.connect() as conn:
            done = (await conn.execute(text("SELECT processed_at FROM events WHERE id = :id"),
                                       {"id": event_id})).scalar_one()
        if done is not None:
            r = await stack.http.get(f"/api/v1/events/{event_id}", headers=stack.auth(key))
            assert r.status_code == 200, r.text
            return dict(r.json())
        await asyncio.sleep(0.05)
    raise AssertionError(f"event {event_id} not processed within {timeout}s")


async def contacts(stack: Stack, key: str) -> list[dict[str, Any]]:
    r = await stack.http.get("/api/v1/contacts?full=true", headers=stack.auth(key))
    assert r.status_code == 200, r.text
    return list(r.json())


async def create_contact(stack: Stack, key: str, body: dict[str, Any]) -> int:
    r = await stack.http.post("/api/v1/contact", headers=stack.auth(key), json=body)
    assert r.status_code == 200, r.text
    return int(r.json()["id"])


def phone_of(contact: dict[str, Any]) -> str | None:
    return next((c["value"] for c in contact["channels"] if c["type"] == "sms"), None)


def assert_seed_identity(contact: dict[str, Any]) -> None:
    assert contact["externalCustomerId"] == "AV13760"
    assert {"type": "email", "value": "site@ukr.net"} in contact["channels"]
    assert phone_of(contact) == SEED_PHONE


async def test_seed_create_contact_event_on_a_fresh_account(stack: Stack) -> None:
    """The seed's create-contact event alone yields a contact with AV13760 and the phone."""
    key = await fresh_account(stack)
    event = await processed(stack, key, await send(stack, key, CREATE_CONTACT))
    (contact,) = await contacts(stack, key)
    assert_seed_identity(contact)
    assert event["contactId"] == contact["id"] and "identityNotes" not in event


async def test_create_contact_after_abandoned_cart_attaches_what_the_contact_lacks(
        stack: Stack) -> None:
    """abandoned_cart first (a contact with the email only), then the seed's create-contact
    event: the same one contact now has AV13760 and the phone, as on a fresh account."""
    key = await fresh_account(stack)
    cart = await processed(stack, key, await send(stack, key, ABANDONED_CART))
    (before,) = await contacts(stack, key)
    assert before["externalCustomerId"] is None and phone_of(before) is None
    event = await processed(stack, key, await send(stack, key, CREATE_CONTACT))
    (contact,) = await contacts(stack, key)
    assert_seed_identity(contact)
    assert cart["contactId"] == event["contactId"] == contact["id"] == before["id"]
    assert "identityNotes" not in event


async def test_conflicts_are_kept_on_the_event_and_change_nothing(stack: Stack) -> None:
    """The contact found by email has another external id and another contact holds the
    phone: both are noted on the event, no contact changes, the stored body is as sent."""
    key = await fresh_account(stack)
    found_id = await create_contact(stack, key, {
        "channels": [{"type": "email", "value": "site@ukr.net"}], "externalCustomerId": "AV1"})
    other_id = await create_contact(stack, key, {
        "channels": [{"type": "sms", "value": SEED_PHONE}]})
    before = {c["id"]: c for c in await contacts(stack, key)}
    body = copy.deepcopy(CREATE_CONTACT)
    event = await processed(stack, key, await send(stack, key, body))
    assert event["contactId"] == found_id
    notes = event["identityNotes"]
    assert [(n["status"], n["field"]) for n in notes] == [
        ("CONFLICT", "params[2].value"), ("CONFLICT", "params[1].value")]
    assert '"AV1"' in notes[0]["message"] and f"contact {other_id}" in notes[1]["message"]
    assert all("nothing was changed" in n["message"] for n in notes)
    after = {c["id"]: c for c in await contacts(stack, key)}
    assert after == before
    assert event["params"] == body["params"] and event["keyValue"] == body["keyValue"]
    r = await stack.http.get("/api/v1/events", headers=stack.auth(key))
    listed = next(e for e in r.json()["events"] if e["id"] == event["id"])
    assert listed["identityNotes"] == notes


async def test_invalid_identifiers_are_never_attached(stack: Stack) -> None:
    """Found by phone, an event with an invalid email leaves the contact without one and says
    why on the event; a valid alias later in the params is attached instead."""
    key = await fresh_account(stack)
    contact_id = await create_contact(stack, key, {"channels": [{"type": "sms",
                                                                 "value": SEED_PHONE}]})
    first = await processed(stack, key, await send(stack, key, {
        "eventTypeKey": "seen", "params": [{"name": "email", "value": "site@ukr"},
                                           {"name": "SMS", "value": "380501234567"}]}))
    assert first["contactId"] == contact_id and first["keyValue"] == "site@ukr"
    (note,) = first["identityNotes"]
    assert note["status"] == "INVALID" and note["field"] == "params[0].value"
    assert "site@ukr" in note["message"]
    (contact,) = await contacts(stack, key)
    assert [c["type"] for c in contact["channels"]] == ["sms"]
    second = await processed(stack, key, await send(stack, key, {
        "eventTypeKey": "seen", "params": [{"name": "Email", "value": "nope"},
                                           {"name": "UserEmail", "value": "Site@UKR.NET"},
                                           {"name": "phone", "value": "+38 (050) 123-45-67"}]}))
    assert second["contactId"] == contact_id
    (contact,) = await contacts(stack, key)
    assert {"type": "email", "value": "Site@ukr.net"} in contact["channels"]


async def test_concurrent_events_attach_one_value_and_note_the_rest(stack: Stack) -> None:
    """Ten events at once give one contact ten different external ids: one is attached, the
    other nine events each carry a conflict, whichever order the workers ran them in."""
    key = await fresh_account(stack)
    contact_id = await create_contact(stack, key, {"channels": [{"type": "email",
                                                                 "value": "race@ukr.net"}]})
    ids = [f"X{i}" for i in range(10)]
    event_ids = await asyncio.gather(*(send(stack, key, {
        "eventTypeKey": "race", "params": [{"name": "email", "value": "race@ukr.net"},
                                           {"name": "externalCustomerId", "value": x}]})
        for x in ids))
    events = [await processed(stack, key, event_id) for event_id in event_ids]
    (contact,) = await contacts(stack, key)
    assert contact["id"] == contact_id and contact["externalCustomerId"] in ids
    clean = [e for e in events if "identityNotes" not in e]
    assert [e["params"][1]["value"] for e in clean] == [contact["externalCustomerId"]]
    for e in events:
        assert e["contactId"] == contact_id
        if e not in clean:
            (note,) = e["identityNotes"]
            assert note["status"] == "CONFLICT" and note["field"] == "params[1].value"


async def test_concurrent_events_offering_one_value_to_many_contacts(stack: Stack) -> None:
    """Ten contacts found by their own emails are each offered the same new phone at once:
    the unique constraint lets exactly one have it; the other events note who has it."""
    key = await fresh_account(stack)
    emails = [f"c{i}@ukr.net" for i in range(10)]
    ids = [await create_contact(stack, key, {"channels": [{"type": "email", "value": e}]})
           for e in emails]
    event_ids = await asyncio.gather(*(send(stack, key, {
        "eventTypeKey": "race", "params": [{"name": "email", "value": e},
                                           {"name": "phone", "value": "380501234567"}]})
        for e in emails))
    events = [await processed(stack, key, event_id) for event_id in event_ids]
    holders = [c["id"] for c in await contacts(stack, key) if phone_of(c) == SEED_PHONE]
    assert len(holders) == 1
    assert [e["contactId"] for e in events] == ids
    for e in events:
        if e["contactId"] == holders[0]:
            assert "identityNotes" not in e
        else:
            (note,) = e["identityNotes"]
            assert note["status"] == "CONFLICT" and f"contact {holders[0]}" in note["message"]
