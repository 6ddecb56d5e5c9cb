"""The contact routes as the public clients call and read them: eSputnik's texts for
update and delete, its contact shape, its search parameters and TotalCount, its bulk
session and import status, and the Ruby client's wrapped update."""

from __future__ import annotations

import secrets
from typing import Any

import pydantic

from tests.compat.conftest import dumps, replay
from tests.compat.helpers import scalar, unique_email
from tests.support import Stack


class Channel(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    type: str
    value: str


class Group(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    id: int
    name: str
    type: str


class FieldValue(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    id: int
    value: Any


class EsputnikContact(pydantic.BaseModel):
    """eSputnik's contact sample as a strict client models it: nothing else allowed."""

    model_config = pydantic.ConfigDict(extra="forbid")
    id: int
    firstName: str | None
    lastName: str | None
    channels: list[Channel]
    addressBookId: int
    groups: list[Group]
    fields: list[FieldValue]


async def a_contact(s: Stack, key: str | None = None, **extra: Any) -> tuple[int, str]:
    email = unique_email("ct")
    body = {"firstName": "Olena", "lastName": "Koval",
            "channels": [{"type": "email", "value": email}], **extra}
    r = await replay(s, "POST", "/api/v1/contact", dumps(body), key=key)
    assert r.status_code == 200, r.text
    return int(r.json()["id"]), email


async def test_put_answers_the_updated_text_and_delete_the_deleted_text(compat: Stack) -> None:
    """PUT /api/v1/contact/{id} and DELETE answer eSputnik's texts as text/plain, which
    clients compare verbatim; the change and the deletion are committed."""
    contact_id, _ = await a_contact(compat)
    r = await replay(compat, "PUT", f"/api/v1/contact/{contact_id}",
                     '{"lastName":"Shevchenko"}')
    assert r.status_code == 200, r.text
    assert r.text == f"Contact with id='{contact_id}' has been updated"
    assert r.headers["content-type"].startswith("text/plain")
    assert await scalar(compat, "SELECT last_name FROM contacts WHERE id = :i",
                        i=contact_id) == "Shevchenko"
    r = await replay(compat, "DELETE", f"/api/v1/contact/{contact_id}/", content_type=None)
    assert r.status_code == 200, r.text
    assert r.text == f"Contact with id='{contact_id}' has been deleted"
    assert r.headers["content-type"].startswith("text/plain")
    assert await scalar(compat, "SELECT count(*) FROM contacts WHERE id = :i", i=contact_id) == 0
    again = await replay(compat, "PUT", f"/api/v1/contact/{contact_id}", '{"lastName":"X"}')
    assert again.status_code == 404 and "error" in again.json()


async def test_get_answers_esputniks_shape_and_full_the_record(compat: Stack) -> None:
    """GET /api/v1/contact/{id} passes a strict model of eSputnik's sample (groups and
    addressBookId included); ?full=true adds our members; another account gets 404."""
    contact_id, email = await a_contact(compat, externalCustomerId=f"X-{secrets.token_hex(3)}")
    r = await replay(compat, "PUT", f"/api/v1/contact/{contact_id}",
                     dumps({"contact": {"firstName": "Olena"}, "groups": ["VIP"],
                            "formType": None}))
    assert r.status_code == 200, r.text
    r = await replay(compat, "GET", f"/api/v1/contact/{contact_id}", content_type=None)
    assert r.status_code == 200, r.text
    contact = EsputnikContact.model_validate(r.json())
    assert contact.id == contact_id and contact.addressBookId == compat.account_id
    assert contact.channels == [Channel(type="email", value=email)]
    assert [(g.name, g.type) for g in contact.groups] == [("VIP", "Static")]
    full = (await replay(compat, "GET", f"/api/v1/contact/{contact_id}?full=true",
                         content_type=None)).json()
    assert full["status"] == "active" and full["externalCustomerId"].startswith("X-")
    assert "createdAt" in full and full["groups"] == r.json()["groups"]
    other = await replay(compat, "GET", f"/api/v1/contact/{contact_id}", content_type=None,
                         key=compat.other_key)
    assert other.status_code == 404


async def test_a_get_answer_sent_back_is_accepted(compat: Stack) -> None:
    """Clients echo what GET answered (either shape) back in a PUT: read-only members
    (addressBookId, groups, status, createdAt, updatedAt) are accepted."""
    contact_id, _ = await a_contact(compat)
    for query in ("", "?full=true"):
        doc = (await replay(compat, "GET", f"/api/v1/contact/{contact_id}{query}",
                            content_type=None)).json()
        doc["firstName"] = "Echo" + query[1:5]
        r = await replay(compat, "PUT", f"/api/v1/contact/{contact_id}", dumps(doc))
        assert r.status_code == 200, r.text
    assert await scalar(compat, "SELECT first_name FROM contacts WHERE id = :i",
                        i=contact_id) == "Echofull"


async def test_unknown_members_are_400s_naming_them_and_change_nothing(compat: Stack) -> None:
    """A member a contact does not have (top level or in the Ruby wrapper), or a formType
    outside a subscription form, is refused by name; the contact is unchanged."""
    contact_id, email = await a_contact(compat)
    cases = [
        ("POST", "/api/v1/contact", {"channels": [{"type": "email", "value": unique_email()}],
                                     "phoneNumber": "+380501234567"}, ["phoneNumber"]),
        ("PUT", f"/api/v1/contact/{contact_id}", {"firstName": "Changed", "nickname": "x"},
         ["nickname"]),
        ("PUT", f"/api/v1/contact/{contact_id}", {"contact": {"firstName": "Changed"},
                                                  "groups": None, "formType": "popup"},
         ["formType"]),
        ("PUT", f"/api/v1/contact/{contact_id}", {"contact": {"firstName": "Changed"},
                                                  "dedupeOn": "email"}, ["dedupeOn"]),
        ("PUT", f"/api/v1/contact/{contact_id}", {"contact": {"firstName": "Changed",
                                                              "emial": email}},
         ["emial"]),
    ]
    for method, path, body, fields in cases:
        r = await replay(compat, method, path, dumps(body))
        assert r.status_code == 400, (body, r.text)
        assert [v["field"] for v in r.json()["violations"]] == fields, r.json()
    assert await scalar(compat, "SELECT first_name FROM contacts WHERE id = :i",
                        i=contact_id) == "Olena"
    r = await replay(compat, "PUT", f"/api/v1/contact/{contact_id}?force=true",
                     '{"firstName":"Changed"}')
    assert r.status_code == 400 and r.json()["violations"][0]["field"] == "force"


async def test_ruby_wrapped_update_is_applied(compat: Stack) -> None:
    """The Ruby client's {"contact": {...}, "groups": null, "formType": null} body, sent
    exactly as it serialises it, changes the contact it names."""
    contact_id, email = await a_contact(compat)
    body = ('{"contact":{"firstName":"Taras","channels":[{"type":"email","value":"'
            + email + '"},{"type":"sms","value":"+380671112233"}]},"groups":null,'
            '"formType":null}')
    r = await replay(compat, "PUT", f"/api/v1/contact/{contact_id}", body)
    assert r.status_code == 200, r.text
    assert r.text == f"Contact with id='{contact_id}' has been updated"
    assert await scalar(compat, "SELECT first_name FROM contacts WHERE id = :i",
                        i=contact_id) == "Taras"
    assert await scalar(compat, "SELECT phone FROM contacts WHERE id = :i",
                        i=contact_id) == "+380671112233"


async def test_search_takes_esputniks_parameters_pages_and_counts(compat: Stack) -> None:
    """GET /api/v1/contacts: firstname, lastname, sms, email, externalCustomerId filter;
    startindex (from 1) and maxrows page; TotalCount counts every match."""
    key = compat.other_key
    last = "Pager" + "".join(secrets.choice("abcdefghijklmnop") for _ in range(8))
    ids = []
    for i in range(5):
        contact_id, _ = await a_contact(compat, key, lastName=last, firstName="NA"[i % 2])
        ids.append(contact_id)
    r = await replay(compat, "GET", f"/api/v1/contacts?lastname={last}&startindex=2&maxrows=2",
                     content_type=None, key=key)
    assert r.status_code == 200, r.text
    assert r.headers["TotalCount"] == "5"
    assert [c["id"] for c in r.json()] == ids[1:3]
    for c in r.json():
        EsputnikContact.model_validate(c)
    r = await replay(compat, "GET", "/api/v1/contacts/", params={"lastname": last,
                                                                 "firstname": "A"},
                     content_type=None, key=key)
    assert [c["id"] for c in r.json()] == [ids[1], ids[3]] and r.headers["TotalCount"] == "2"
    phone = f"+38067{secrets.randbelow(10**7):07d}"
    contact_id, _ = await a_contact(compat, key, channels=[
        {"type": "email", "value": unique_email()}, {"type": "sms", "value": phone}])
    r = await replay(compat, "GET", "/api/v1/contacts", params={"sms": phone[1:]},
                     content_type=None, key=key)
    assert [c["id"] for c in r.json()] == [contact_id] and r.headers["TotalCount"] == "1"
    r = await replay(compat, "GET", "/api/v1/contacts", params={"lastname": last},
                     content_type=None)
    assert r.json() == [] and r.headers["TotalCount"] == "0"


async def test_search_refuses_unknown_parameters(compat: Stack) -> None:
    """An ignored filter would answer every contact: an unknown parameter is a 400
    naming it; paging out of range names startindex or maxrows."""
    for query, field in (("?lastName=Koval", "lastName"), ("?mail=a@b.c", "mail"),
                         ("?maxrows=501", "maxrows"), ("?startindex=0", "startindex")):
        r = await replay(compat, "GET", f"/api/v1/contacts{query}", content_type=None)
        assert r.status_code == 400, (query, r.text)
        assert [v["field"] for v in r.json()["violations"]] == [field]


def bulk_entry(email: str, **extra: Any) -> dict[str, Any]:
    return {"firstName": "Bulk", "channels": [{"type": "email", "value": email}], **extra}


async def test_bulk_answers_a_session_and_importstatus_reads_it(compat: Stack) -> None:
    """POST /api/v1/contacts answers {"asyncSessionId"} (failures as failedContacts); the
    contacts are written already; GET /api/v1/importstatus/{id} reads the session back,
    for its own account only; ?results=true answers our per-contact results."""
    good, other = unique_email("bk"), unique_email("bk")
    r = await replay(compat, "POST", "/api/v1/contacts", dumps(
        {"contacts": [bulk_entry(good), bulk_entry(other)], "dedupeOn": "email"}))
    assert r.status_code == 200, r.text
    assert list(r.json()) == ["asyncSessionId"]
    session = r.json()["asyncSessionId"]
    assert await scalar(compat, "SELECT count(*) FROM contacts WHERE email IN (:a, :b)",
                        a=good, b=other) == 2
    status = await replay(compat, "GET", f"/api/v1/importstatus/{session}", content_type=None)
    assert status.status_code == 200, status.text
    doc = status.json()
    assert doc["status"] == "FINISHED" and doc["asyncSessionId"] == session
    assert doc["failedContacts"] == [] and doc["successCount"] == 2
    assert [x["status"] for x in doc["results"]] == ["CREATED", "CREATED"]
    foreign = await replay(compat, "GET", f"/api/v1/importstatus/{session}", content_type=None,
                           key=compat.other_key)
    assert foreign.status_code == 404

    r = await replay(compat, "POST", "/api/v1/contacts/", dumps(
        {"contacts": [bulk_entry(good), bulk_entry("broken")], "dedupeOn": "email"}))
    assert r.status_code == 200, r.text
    (failed,) = r.json()["failedContacts"]
    assert failed["index"] == 1 and failed["status"] == "INVALID"
    assert "broken" in failed["errors"][0]
    r = await replay(compat, "POST", "/api/v1/contacts?results=true",
                     dumps({"contacts": [bulk_entry(good)]}))
    doc = r.json()
    assert doc["results"][0]["status"] == "UPDATED" and doc["successCount"] == 1
    assert doc["asyncSessionId"]


async def test_bulk_group_names_and_contact_fields(compat: Stack) -> None:
    """groupNames puts every written contact in those groups; contactFields limits what
    an existing contact has updated (new contacts get everything); unknown members and
    contact field names are 400s naming them."""
    known, new = unique_email("cf"), unique_email("cf")
    r = await replay(compat, "POST", "/api/v1/contact", dumps(bulk_entry(known, lastName="Old")))
    known_id = r.json()["id"]
    body = {"contacts": [bulk_entry(known, firstName="Renamed", lastName="New"),
                         bulk_entry(new, lastName="Fresh")],
            "dedupeOn": "email", "contactFields": ["lastName", "email"],
            "customFieldsIDs": [], "groupNames": ["Imported"]}
    r = await replay(compat, "POST", "/api/v1/contacts", dumps(body))
    assert r.status_code == 200, r.text
    assert await scalar(compat, "SELECT first_name || '/' || last_name FROM contacts "
                        "WHERE id = :i", i=known_id) == "Bulk/New"
    assert await scalar(compat, "SELECT first_name || '/' || last_name FROM contacts "
                        "WHERE email = :e", e=new) == "Bulk/Fresh"
    assert await scalar(compat, "SELECT count(*) FROM contact_group_members m JOIN "
                        "contact_groups g ON g.id = m.group_id JOIN contacts c ON "
                        "c.id = m.contact_id WHERE g.name = 'Imported' AND c.email IN "
                        "(:a, :b)", a=known, b=new) == 2
    for bad, field in (({"contacts": [], "restoreDeleted": "yes"}, "restoreDeleted"),
                       ({"contacts": [], "restoreDelete": True}, "restoreDelete"),
                       ({"contacts": [], "contactFields": ["nickname"]}, "contactFields[0]"),
                       ({"contacts": [], "customFieldsIDs": ["x"]}, "customFieldsIDs"),
                       ({"contacts": [bulk_entry(unique_email(), nick="x")]}, None)):
        r = await replay(compat, "POST", "/api/v1/contacts", dumps(bad))
        if field is None:  # an entry's unknown member fails that entry, by name
            (failed,) = r.json()["failedContacts"]
            assert "nick" in failed["errors"][0], failed
            continue
        assert r.status_code == 400, (bad, r.text)
        assert [v["field"] for v in r.json()["violations"]] == [field], r.json()
