"""The contact API over real HTTP (gateway) and gRPC, and contacts made by ingested events."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import grpc
import pytest
from sqlalchemy import insert, text

from eventflow.v1 import contacts_pb2, contacts_pb2_grpc, events_pb2_grpc
from server.codec.proto import input_to_request
from server.contacts import parse_event_form
from server.contacts.fields_store import load_field_definitions
from server.contacts.store import upsert_contact
from server.db.models import EventType, table_of, utcnow
from server.ingest.model import EventInput
from tests.core.seed import CREATE_CONTACT
from tests.support import Stack, grpc_violations

SEED_FORM = {"email": "site@ukr.net", "phone": "380501234567", "externalCustomerId": "AV13760",
             **CREATE_CONTACT["params"][3]["value"]}
SEED_API_FORM = {
    "channels": [{"type": "email", "value": "site@ukr.net"}, {"type": "sms", "value": "380501234567"}],
    "externalCustomerId": "AV13760", "fields": [{"id": 10001, "value": "2020-11-23"}]}
FIVE_INVALID = {"firstname": "Ivan3", "sms": "call me", "languageCode": "en_US",
                "timeZone": "Mars/Olympus", "profileInputs": [{"profileInputId": 10001,
                                                               "value": "2020-13-45"}]}


def unique_email() -> str:
    return f"c{secrets.token_hex(4)}@example.com"


async def ensure_birthday(stack: Stack, key: str | None = None) -> None:
    r = await stack.http.post("/api/v1/fields", headers=stack.auth(key),
                              json={"id": 10001, "name": "Birthday", "type": "date"})
    assert r.status_code in (200, 409), r.text


async def count_contacts(stack: Stack) -> int:
    async with stack.engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM contacts"))).scalar_one())


async def find_by_email(stack: Stack, email: str, *, wait: float = 0.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + wait
    while True:
        r = await stack.http.get("/api/v1/contacts", params={"email": email, "full": "true"},
                                 headers=stack.auth())
        assert r.status_code == 200, r.text
        if r.json() or time.monotonic() >= deadline:
            return list(r.json())
        await asyncio.sleep(0.1)


def assert_seed_contact(doc: dict[str, Any]) -> None:
    assert {"type": "sms", "value": "+380501234567"} in doc["channels"]
    assert doc["externalCustomerId"] == "AV13760"
    assert {"id": 10001, "value": "2020-11-23"} in doc["fields"]


async def test_seed_contact_through_api_form_shows_phone_id_and_field(stack: Stack) -> None:
    """POST /api/v1/contact with the seed's contact in the API form, then GET shows it all."""
    await ensure_birthday(stack)
    r = await stack.http.post("/api/v1/contact", headers=stack.auth(), json=SEED_API_FORM)
    assert r.status_code == 200, r.text
    contact_id = r.json()["id"]
    doc = (await stack.http.get(f"/api/v1/contact/{contact_id}?full=true",
                                headers=stack.auth())).json()
    assert_seed_contact(doc)
    assert doc["id"] == contact_id and doc["status"] == "active"


async def test_seed_contact_through_create_or_update_function(stack: Stack) -> None:
    """upsert_contact with the seed's event-form data; GET /api/v1/contact/{id} shows it."""
    await ensure_birthday(stack, stack.other_key)
    async with stack.engine.begin() as conn:
        fields = await load_field_definitions(conn, account_id=stack.other_account_id)
        data = parse_event_form(SEED_FORM, fields=fields)
        contact_id = await upsert_contact(conn, account_id=stack.other_account_id, data=data,
                                          source="workflow")
    r = await stack.http.get(f"/api/v1/contact/{contact_id}", params={"full": "1"},
                             headers=stack.auth(stack.other_key))
    assert r.status_code == 200, r.text
    assert_seed_contact(r.json())


async def test_malformed_phone_changes_nothing_and_says_why(stack: Stack) -> None:
    """The seed's contact with a bad phone: 400 naming phone and value; the card is unchanged."""
    await ensure_birthday(stack)
    r = await stack.http.post("/api/v1/contact", headers=stack.auth(), json=SEED_API_FORM)
    contact_id = r.json()["id"]
    before = (await stack.http.get(f"/api/v1/contact/{contact_id}", headers=stack.auth())).json()
    bad = {**SEED_API_FORM, "firstName": "Changed", "channels": [
        {"type": "email", "value": "site@ukr.net"}, {"type": "sms", "value": "38050-CALL-ME"}]}
    r = await stack.http.post("/api/v1/contact", headers=stack.auth(), json=bad)
    assert r.status_code == 400, r.text
    (violation,) = r.json()["violations"]
    assert violation["field"] == "channels[1].value"
    assert "38050-CALL-ME" in violation["message"] and "phone number" in violation["message"]
    after = (await stack.http.get(f"/api/v1/contact/{contact_id}", headers=stack.auth())).json()
    assert after == before


async def test_event_with_only_email_creates_a_findable_contact(stack: Stack) -> None:
    """An event whose only param is an email creates the contact and is linked to it."""
    email = unique_email()
    r = await stack.post_event({"eventTypeKey": "page_view", "params": [{"name": "Email",
                                                                          "value": email}]})
    assert r.status_code == 200, r.text
    found = await find_by_email(stack, email.upper(), wait=10)
    assert len(found) == 1 and found[0]["channels"] == [{"type": "email", "value": email}]
    async with stack.engine.connect() as conn:
        linked = (await conn.execute(text("SELECT contact_id FROM events WHERE id = :id"),
                                     {"id": int(r.headers["X-Event-Id"])})).scalar_one()
    assert linked == found[0]["id"]


async def test_event_type_without_create_contacts_creates_none(stack: Stack) -> None:
    """With "create contacts" off for its type, an event for an unknown email creates nothing."""
    async with stack.engine.begin() as conn:
        await conn.execute(insert(table_of(EventType)).values(
            account_id=stack.account_id, key="no_contacts", create_contacts=False,
            created_at=utcnow()))
    email = unique_email()
    r = await stack.post_event({"eventTypeKey": "no_contacts", "params": [{"name": "email",
                                                                            "value": email}]})
    event_id = int(r.headers["X-Event-Id"])
    deadline = time.monotonic() + 10
    async with stack.engine.connect() as conn:
        while time.monotonic() < deadline:
            row = (await conn.execute(text("SELECT processed_at FROM events WHERE id = :id"),
                                      {"id": event_id})).scalar_one()
            if row is not None:
                break
            await asyncio.sleep(0.1)
            await conn.rollback()
    assert row is not None and await find_by_email(stack, email) == []


async def test_concurrent_events_for_one_new_contact_create_one(stack: Stack) -> None:
    """Ten concurrent events (and API calls) for the same new phone create exactly one contact."""
    phone = f"+38050{secrets.randbelow(9000000) + 1000000}"
    bodies = [{"eventTypeKey": "race", "params": [{"name": "phone", "value": phone}]}] * 10
    replies = await asyncio.gather(*(stack.post_event(b) for b in bodies), *(
        stack.http.post("/api/v1/contact", headers=stack.auth(),
                        json={"channels": {"type": "sms", "value": phone}}) for _ in range(10)))
    assert all(r.status_code == 200 for r in replies)
    assert len({r.json()["id"] for r in replies[10:]}) == 1
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        async with stack.engine.connect() as conn:
            pending = (await conn.execute(text(
                "SELECT count(*) FROM events WHERE event_type_id IN (SELECT id FROM event_types "
                "WHERE key = 'race') AND processed_at IS NULL"))).scalar_one()
        if not pending:
            break
        await asyncio.sleep(0.1)
    r = await stack.http.get("/api/v1/contacts", params={"phone": phone}, headers=stack.auth())
    assert [c["id"] for c in r.json()] == [replies[10].json()["id"]]


async def test_contact_json_with_five_invalid_fields_answers_all_five_over_http(stack: Stack) -> None:
    """A contactJson with five invalid fields: 400 listing each, and nothing stored."""
    await ensure_birthday(stack)
    before = await stack.count_events()
    r = await stack.post_event({"eventTypeKey": "signup", "params": [
        {"name": "email", "value": unique_email()}, {"name": "contactJson", "value": FIVE_INVALID}]})
    assert r.status_code == 400, r.text
    fields = {v["field"] for v in r.json()["violations"]}
    assert fields == {"contactJson.firstname", "contactJson.sms", "contactJson.languageCode",
                      "contactJson.timeZone", "contactJson.profileInputs[0].value"}
    assert all(v["message"] for v in r.json()["violations"])
    assert await stack.count_events() == before


async def test_contact_json_as_text_with_five_invalid_fields_over_grpc(stack: Stack) -> None:
    """The same check over gRPC (contactJson as JSON text, as v1 sends it): five violations."""
    import orjson

    await ensure_birthday(stack)
    request = input_to_request(EventInput("signup", "k1", [
        ("contactJson", orjson.dumps(FIVE_INVALID).decode())]))
    before = await stack.count_events()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await events_pb2_grpc.EventServiceStub(stack.channel).GenerateEvent(
            request, metadata=stack.meta())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(grpc_violations(info.value)) == 5 and await stack.count_events() == before


async def test_valid_contact_json_is_accepted(stack: Stack) -> None:
    """A valid contactJson does not stop the event."""
    await ensure_birthday(stack)
    r = await stack.post_event({"eventTypeKey": "signup", "keyValue": "k", "params": [
        {"name": "contactJson", "value": {"firstname": "Ivan", "sms": "+380501234567",
                                          "profileInputs": [{"profileInputId": 10001,
                                                             "value": "23.11.2020"}]}}]})
    assert r.status_code == 200, r.text


async def test_field_definitions_crud_over_http(stack: Stack) -> None:
    """Fields: create (id assigned), read, replace, list, delete; bad bodies name the member."""
    auth = stack.auth()
    r = await stack.http.post("/api/v1/fields", headers=auth, json={
        "name": "Size", "type": "Dropdown", "allowedValues": ["S", "M"], "required": False})
    assert r.status_code == 200, r.text
    created = r.json()
    assert created["type"] == "dropdown" and created["id"] >= 10001
    path = f"/api/v1/fields/{created['id']}"
    assert (await stack.http.get(path, headers=auth)).json() == created
    r = await stack.http.put(path, headers=auth, json={"name": "Age", "type": "number",
                                                       "min": 0, "max": 150})
    assert r.json() == {**created, "name": "Age", "type": "number", "allowedValues": [],
                        "min": 0, "max": 150}
    assert r.json() in (await stack.http.get("/api/v1/fields", headers=auth)).json()
    r = await stack.http.post("/api/v1/fields", headers=auth, json={"name": "", "type": "colour"})
    assert r.status_code == 400 and {v["field"] for v in r.json()["violations"]} == {"name", "type"}
    assert (await stack.http.delete(path, headers=auth)).status_code == 200
    assert (await stack.http.get(path, headers=auth)).status_code == 404
    other = await stack.http.get("/api/v1/fields/10001", headers=stack.auth(stack.other_key))
    assert other.status_code in (200, 404)


async def test_field_definitions_over_grpc(stack: Stack) -> None:
    """ContactService creates and lists definitions; a taken id is FAILED_PRECONDITION."""
    stub = contacts_pb2_grpc.ContactServiceStub(stack.channel)
    request = contacts_pb2.CreateFieldRequest()
    request.definition.update({"name": "Score", "type": "decimal", "min": "0.5"})
    created = await stub.CreateField(request, metadata=stack.meta())
    assert created.type == "decimal" and created.min == "0.5" and not created.HasField("max")
    listed = await stub.ListFields(contacts_pb2.ListFieldsRequest(), metadata=stack.meta())
    assert created in listed.fields
    request.definition.update({"id": created.id})
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CreateField(request, metadata=stack.meta())
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_put_get_delete_contact_and_account_isolation(stack: Stack) -> None:
    """PUT changes only what it names; another account gets 404; DELETE removes the contact."""
    email = unique_email()
    r = await stack.http.post("/api/v1/contact", headers=stack.auth(), json={
        "firstName": "Olena", "channels": {"type": "email", "value": email},
        "address": {"town": "Lviv"}, "languageCode": "uk", "timeZone": "Europe/Kyiv"})
    path = f"/api/v1/contact/{r.json()['id']}"
    r = await stack.http.put(path, headers=stack.auth(), json={"lastName": "Shevchenko"})
    assert r.status_code == 200, r.text
    assert r.text == f"Contact with id='{path.rsplit('/', 1)[1]}' has been updated"
    doc = (await stack.http.get(path + "?full=true", headers=stack.auth())).json()
    assert (doc["firstName"], doc["lastName"], doc["address"]["town"]) == ("Olena", "Shevchenko",
                                                                           "Lviv")
    other = stack.auth(stack.other_key)
    assert (await stack.http.get(path, headers=other)).status_code == 404
    assert (await stack.http.put(path, headers=other, json={"lastName": "X"})).status_code == 404
    assert (await stack.http.delete(path, headers=other)).status_code == 404
    assert await find_by_email(stack, email) != []
    assert (await stack.http.delete(path, headers=stack.auth())).status_code == 200
    assert (await stack.http.get(path, headers=stack.auth())).status_code == 404
    assert (await stack.http.put("/api/v1/contact/999999999", headers=stack.auth(),
                                 json={"lastName": "X"})).status_code == 404


async def test_concurrent_bulks_creating_the_same_contacts_all_succeed(stack: Stack) -> None:
    """Bulks that create the same new contacts at the same moment all answer 200 (one of
    them used to fail with 502 on the unique constraint): each contact is created once,
    and every bulk reports each of its entries as CREATED or UPDATED."""
    for _ in range(3):
        emails = [unique_email() for _ in range(300)]
        body = {"contacts": [{"firstName": "Race", "channels": [{"type": "email", "value": e}]}
                             for e in emails], "dedupeOn": "email"}
        before = await count_contacts(stack)
        replies = await asyncio.gather(*(stack.http.post(
            "/api/v1/contacts?results=true", headers=stack.auth(), json=body, timeout=60)
            for _ in range(4)))
        for r in replies:
            assert r.status_code == 200, r.text[:300]
            assert {x["status"] for x in r.json()["results"]} <= {"CREATED", "UPDATED"}
        assert await count_contacts(stack) == before + 300
        created = sum(x["status"] == "CREATED" for r in replies for x in r.json()["results"])
        assert created == 300


async def test_bulk_upsert_reports_each_failure_and_writes_the_rest(stack: Stack) -> None:
    """POST /api/v1/contacts: valid contacts are written, each failure is reported by index."""
    await ensure_birthday(stack)
    emails = [unique_email() for _ in range(3)]
    contacts = [
        {"firstName": "A", "channels": [{"type": "email", "value": emails[0]}],
         "fields": [{"id": 10001, "value": "01/02/2021"}]},
        {"firstName": "B", "channels": [{"type": "email", "value": "broken"}]},
        {"firstName": "C", "channels": [{"type": "sms", "value": "+380671234567"}]},
        {"lastName": "Again", "channels": [{"type": "email", "value": emails[0].upper()}]},
        {"firstName": "D", "channels": [{"type": "email", "value": emails[1]}]},
    ]
    r = await stack.http.post("/api/v1/contacts?results=true", headers=stack.auth(),
                              json={"contacts": contacts, "dedupeOn": "email"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["asyncSessionId"]
    statuses = [result["status"] for result in doc["results"]]
    assert statuses == ["CREATED", "INVALID", "INVALID", "CREATED", "CREATED"]
    assert (doc["successCount"], doc["errorCount"]) == (3, 2)
    assert "broken" in doc["results"][1]["errors"][0]
    (first,) = await find_by_email(stack, emails[0])
    assert (first["firstName"], first["lastName"]) == ("A", "Again")
    assert first["fields"] == [{"id": 10001, "value": "2021-02-01"}]
    r = await stack.http.post("/api/v1/contacts", params={"results": "true"},
                              headers=stack.auth(), json={
        "contacts": [{"firstName": "Z", "channels": {"type": "email", "value": emails[1]}}],
        "dedupeOn": "email"})
    assert r.json()["results"][0]["status"] == "UPDATED"
    r = await stack.http.post("/api/v1/contacts", headers=stack.auth(),
                              json={"contacts": [{}] * 3001})
    assert r.status_code == 400




