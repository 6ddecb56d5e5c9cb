"""The bulk body's other members as clients send them: a PHP client's whole
ContactBulkUpdateForm (fieldId, customFieldsIds, groupNamesExclude, restoreDeleted,
eventKeyForNewContacts), a TypeScript integration's restoreDeleted: true cycle, and the
refusals that change nothing."""

from __future__ import annotations

import secrets
from typing import Any

from tests.compat.conftest import dumps, replay
from tests.compat.helpers import events_of, scalar, unique_email
from tests.support import Stack


def php_form(contacts: list[dict[str, Any]], **changes: Any) -> str:
    """The PHP ContactBulkUpdateForm as json_encode writes it: every public member, in
    order, with its defaults (restoreDeleted false, eventKeyForNewContacts updateFromAPI)."""
    form = {"contacts": contacts, "dedupeOn": "email", "fieldId": None, "contactFields": [],
            "customFieldsIds": [], "groupNames": [], "groupNamesExclude": [],
            "restoreDeleted": False, "eventKeyForNewContacts": "updateFromAPI", **changes}
    return dumps(form).decode()


def entry(email: str, **extra: Any) -> dict[str, Any]:
    return {"firstName": "Bulk", "channels": [{"type": "email", "value": email}], **extra}


async def created_then_deleted(s: Stack, email: str, key: str | None = None) -> int:
    r = await replay(s, "POST", "/api/v1/contact", dumps(entry(email, lastName="Old")), key=key)
    contact_id = int(r.json()["id"])
    r = await replay(s, "DELETE", f"/api/v1/contact/{contact_id}", content_type=None, key=key)
    assert r.status_code == 200, r.text
    return contact_id


async def test_php_form_skips_deleted_contacts_and_emits_for_new_ones(compat: Stack) -> None:
    """The default form (restoreDeleted false): an address deleted earlier is DELETED in
    failedContacts (named, not written); a new one is created, joins groupNames and gets
    one updateFromAPI event; a known one is updated (contactFields [] limits nothing)."""
    gone, new, known = unique_email("gone"), unique_email("new"), unique_email("known")
    old_id = await created_then_deleted(compat, gone)
    r = await replay(compat, "POST", "/api/v1/contact", dumps(entry(known)))
    known_id = r.json()["id"]
    body = php_form([entry(gone), entry(new), entry(known, firstName="Renamed")],
                    groupNames=["Buyers"])
    r = await replay(compat, "POST", "/api/v1/contacts", body)
    assert r.status_code == 200, r.text
    (failed,) = r.json()["failedContacts"]
    assert failed["index"] == 0 and failed["status"] == "DELETED"
    assert f"id {old_id}" in failed["errors"][0] and "restoreDeleted" in failed["errors"][0]
    assert await scalar(compat, "SELECT count(*) FROM contacts WHERE email = :e", e=gone) == 0
    assert await scalar(compat, "SELECT first_name FROM contacts WHERE id = :i",
                        i=known_id) == "Renamed"
    new_id = await scalar(compat, "SELECT id FROM contacts WHERE email = :e", e=new)
    (event,) = await events_of(compat, "updateFromAPI", new)
    params = {p["name"]: p["value"] for p in event["params"]}
    assert params == {"contactId": new_id, "email": new, "firstName": "Bulk"}
    assert await events_of(compat, "updateFromAPI", known) == []
    status = (await replay(compat, "GET", f"/api/v1/importstatus/{r.json()['asyncSessionId']}",
                           content_type=None)).json()
    assert [x["status"] for x in status["results"]] == ["DELETED", "CREATED", "UPDATED"]
    assert await scalar(compat, "SELECT count(*) FROM contact_group_members m JOIN "
                        "contact_groups g ON g.id = m.group_id WHERE g.name = 'Buyers' AND "
                        "m.contact_id IN (:a, :b)", a=new_id, b=known_id) == 2


async def test_restore_deleted_brings_the_contact_back_under_its_id(compat: Stack) -> None:
    """A TypeScript integration's cycle (import into a group with restoreDeleted: true,
    delete, import again): the deleted contact comes back with its old id, in the group,
    and the next plain import updates it."""
    email = unique_email("cycle")
    old_id = await created_then_deleted(compat, email)
    body = {"contacts": [{"firstName": "Back", "channels": [{"type": "email", "value": email}],
                          "timeZone": "Europe/Kyiv"}],
            "dedupeOn": "email", "contactFields": ["firstName", "timeZone", "address"],
            "groupNames": ["Leads: cycle"], "restoreDeleted": True}
    r = await replay(compat, "POST", "/api/v1/contacts", dumps(body))
    assert r.status_code == 200 and "failedContacts" not in r.json(), r.text
    got = await replay(compat, "GET", f"/api/v1/contact/{old_id}", content_type=None)
    assert got.status_code == 200, got.text
    assert got.json()["firstName"] == "Back"
    assert [g["name"] for g in got.json()["groups"]] == ["Leads: cycle"]
    r = await replay(compat, "POST", "/api/v1/contacts", php_form([entry(email)]))
    assert "failedContacts" not in r.json(), r.text
    assert await scalar(compat, "SELECT first_name FROM contacts WHERE id = :i",
                        i=old_id) == "Bulk"


async def test_group_names_exclude_takes_written_contacts_out(compat: Stack) -> None:
    """groupNamesExclude: every written contact leaves those groups; others stay in."""
    a, b = unique_email("ex"), unique_email("ex")
    await replay(compat, "POST", "/api/v1/contacts", php_form(
        [entry(a), entry(b)], groupNames=["Trial"]))
    r = await replay(compat, "POST", "/api/v1/contacts/", php_form(
        [entry(a)], groupNames=["Paid"], groupNamesExclude=["Trial"]))
    assert r.status_code == 200, r.text
    members = {}
    for email in (a, b):
        contact_id = await scalar(compat, "SELECT id FROM contacts WHERE email = :e", e=email)
        doc = (await replay(compat, "GET", f"/api/v1/contact/{contact_id}",
                            content_type=None)).json()
        members[email] = sorted(g["name"] for g in doc["groups"])
    assert members == {a: ["Paid"], b: ["Trial"]}


async def test_erasure_forgets_the_deleted_contact(compat: Stack) -> None:
    """An erased person leaves no tombstone: a later import creates them as new."""
    email, customer = unique_email("forget"), f"F-{unique_email('x')[:8]}"
    await created_then_deleted(compat, email)
    r = await replay(compat, "POST", "/api/v1/contact", dumps(
        entry(email, externalCustomerId=customer)))
    assert r.status_code == 200, r.text
    r = await replay(compat, "DELETE",
                     f"/api/v1/contact?externalCustomerId={customer}&erase=true")
    assert r.status_code == 200, r.text
    assert await scalar(compat, "SELECT count(*) FROM deleted_contacts WHERE email_key = :e",
                        e=email) == 0
    r = await replay(compat, "POST", "/api/v1/contacts", php_form([entry(email)]))
    assert "failedContacts" not in r.json(), r.text


async def test_refused_members_name_the_field_and_write_nothing(compat: Stack) -> None:
    """A bad eventKeyForNewContacts, a fieldId (deduplicating on an additional field is not
    offered), a non-boolean restoreDeleted, a group both joined and left: 400s naming the
    member, and the contact is not written."""
    email = unique_email("refused")
    cases = [
        ({"eventKeyForNewContacts": "new/users"}, "eventKeyForNewContacts"),
        ({"eventKeyForNewContacts": 5}, "eventKeyForNewContacts"),
        ({"fieldId": 10001}, "fieldId"),
        ({"restoreDeleted": "false"}, "restoreDeleted"),
        ({"groupNames": ["A"], "groupNamesExclude": ["A"]}, "groupNamesExclude[0]"),
        ({"customFieldsIds": [], "customFieldsIDs": []}, "customFieldsIds"),
    ]
    for changes, field in cases:
        r = await replay(compat, "POST", "/api/v1/contacts", php_form([entry(email)], **changes))
        assert r.status_code == 400, (changes, r.text)
        assert [v["field"] for v in r.json()["violations"]] == [field], r.json()
    assert await scalar(compat, "SELECT count(*) FROM contacts WHERE email = :e", e=email) == 0


async def test_email_or_sms_matches_by_email_then_by_phone(compat: Stack) -> None:
    """dedupeOn email_or_sms (a Laravel CRM's): an entry is found by its email, else by its
    phone (and given the email), else created; one with neither is INVALID."""
    known_email, new_email = unique_email("eos"), unique_email("eos")
    phone = f"+38067{secrets.randbelow(10**7):07d}"
    by_email = (await replay(compat, "POST", "/api/v1/contact", dumps(
        entry(known_email)))).json()["id"]
    by_phone = (await replay(compat, "POST", "/api/v1/contact", dumps(
        {"channels": [{"type": "sms", "value": phone}]}))).json()["id"]
    body = {"contacts": [
        entry(known_email, firstName="Email"),
        {"firstName": "Phone", "channels": [{"type": "email", "value": new_email},
                                            {"type": "sms", "value": phone}]},
        entry(unique_email("eos"), firstName="Fresh"),
        {"firstName": "Nobody"}], "dedupeOn": "email_or_sms", "groupNames": ["CRM"]}
    r = await replay(compat, "POST", "/api/v1/contacts?results=true", dumps(body))
    assert r.status_code == 200, r.text
    got = [(x["status"], x["id"]) for x in r.json()["results"]]
    assert got[:2] == [("UPDATED", by_email), ("UPDATED", by_phone)]
    assert got[2][0] == "CREATED" and got[3] == ("INVALID", None)
    assert "email or sms" in r.json()["results"][3]["errors"][0]
    assert await scalar(compat, "SELECT email FROM contacts WHERE id = :i",
                        i=by_phone) == new_email
    assert await scalar(compat, "SELECT first_name FROM contacts WHERE id = :i",
                        i=by_email) == "Email"
